"""Reading JSON Lines files fast: whole blocks split at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def line_blocks(path: Path, chunk: int = 1 << 22) -> Iterator[list[bytes]]:
    """The file's lines (without newlines) in blocks read 4 MiB at a time: several times cheaper
    per line than iterating the file object. JSON tolerates the ``\\r`` of a CRLF file."""
    tail = b""
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            parts = (tail + block).split(b"\n")
            tail = parts.pop()
            yield parts
    if tail:
        yield [tail]
