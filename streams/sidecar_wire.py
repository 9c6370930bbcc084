"""What replay's engine process and its sidecar say to each other (``streams/replay_sidecar.py``
starts the sidecar, ``streams/sidecar_serve.py`` is the sidecar): length-prefixed messages, the
first a ``Setup``, then chunks of hand-over entries, then an empty message; the answer is a status
and the alerts found."""

from __future__ import annotations

from typing import IO, Final

import msgspec

from streams.alerts import Alert

# The hand-over is a sequence of 64-bit entries, one per rule call of the engine's, in its order:
# a positive entry is the line number of a transaction the engine accepted (terminal health for
# it, and it becomes the transaction the next calls are about); the markers below are the other
# calls (line numbers start at 1).
SWEEP: Final = 0
"""A sweep of short-lived state; its time follows."""
FEATURE_SWEEP: Final = -1
"""A sweep of the model's feature state; its time follows."""
SALE: Final = -2
"""Duplicate charges for the transaction (an approved sale nothing has cancelled)."""
CARD_SALE: Final = -3
"""Card velocity for the transaction (an approved sale)."""
CANCEL: Final = -4
"""Duplicate charges for the transaction's cancellation of its original."""
PATTERNS: Final = -5
"""The model for the transaction."""
RETIME: Final = -6
"""The partition's clock gave a transaction another time than its own; its line number and
that time follow (before the transaction is handed over)."""

Found = list[tuple[int, Alert]]
"""(index of the rule call in the hand-over sequence, the alert it raised)."""


class Setup(msgspec.Struct, frozen=True):
    """What the sidecar is told first. The configuration is pickled (it is this process's own
    object, sent down a pipe to a child); the model goes as its verified file content, empty for
    none. Plain field types only: this module is compiled, and mypyc keeps no unions or
    ``Literal`` in annotations for msgspec to read."""

    transactions: str
    config: bytes
    model: bytes
    terminals: bool
    duplicates: bool


def send(fh: IO[bytes], payload: bytes) -> None:
    fh.write(len(payload).to_bytes(8, "little"))
    fh.write(payload)


def receive(fh: IO[bytes]) -> bytes:
    header = fh.read(8)
    if len(header) < 8:
        raise EOFError
    size = int.from_bytes(header, "little")
    payload = fh.read(size)
    if len(payload) < size:
        raise EOFError
    return payload
