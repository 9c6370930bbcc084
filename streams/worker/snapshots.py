"""Partition snapshots in a changelog-backed table: a worker taking over a partition loads the
newest and feeds its engine only the journal written after it (``streams/worker/journal.py``).

A snapshot is the partition's state after the journal entries below its sequence number
(``PartitionPipeline.snapshot``). It is taken when the timer that marks what is published runs,
before the producer flush, and written after it: by then everything the entries below it produced
is on its topic and in the journal's changelog, so nothing before the snapshot ever has to be
published again.

A snapshot can be larger than a message, so it is written in chunks under
``PPPPP/SSSSSSSSSSSSSSSS/CCCCCC`` (partition, sequence number, chunk) and made current by one
small value under ``PPPPP/head`` written after the chunks; the chunks of the snapshot it replaces
are deleted then. A head whose chunks are not all there (a worker killed while writing) is
ignored, and so is a snapshot the journal no longer reaches: the journal alone rebuilds the
partition, as without snapshots.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Final

import msgspec

log = logging.getLogger("posguard.worker")

_HEAD: Final = b"head"


class _Head(msgspec.Struct, array_like=True, frozen=True):
    seq: int
    chunks: int
    size: int


def _chunk_key(p: int, seq: int, chunk: int) -> bytes:
    return b"%05d/%016d/%06d" % (p, seq, chunk)


def _head_key(p: int) -> bytes:
    return b"%05d/" % p + _HEAD


@dataclass(frozen=True, slots=True)
class SnapshotPolicy:
    """When a partition's state is worth a snapshot: ``every_entries`` journal entries after the
    last, or ``every_s`` seconds after it once anything was journaled since. Taking one costs
    about a microsecond per retained event (the loop is held meanwhile); a takeover then feeds
    its engine at most what was journaled since."""

    every_entries: int = 1_000_000
    every_s: float = 300.0

    def due(self, entries_since: int, seconds_since: float) -> bool:
        return entries_since >= self.every_entries or (
            entries_since > 0 and seconds_since >= self.every_s
        )


class SnapshotTable:
    """The partitions' newest snapshots, in a changelog-backed Faust table of bytes."""

    def __init__(self, table: Any, chunk_bytes: int, policy: SnapshotPolicy) -> None:
        self.table = table
        self._chunk_bytes = chunk_bytes
        self.policy = policy
        self._heads: dict[int, _Head] = {}
        self._taken: dict[int, tuple[int, float]] = {}
        """Per partition, the sequence number of its last snapshot and when it was taken (the
        rebuild counts as one: the journal since it is what a takeover would feed)."""

    def due(self, p: int, seq: int) -> bool:
        last_seq, last_at = self._taken.get(p, (0, time.monotonic()))
        self._taken.setdefault(p, (last_seq, last_at))
        return self.policy.due(seq - last_seq, time.monotonic() - last_at)

    def taken(self, p: int, seq: int) -> None:
        """A snapshot of partition ``p`` at ``seq`` was taken (or the partition was rebuilt up
        to there)."""
        self._taken[p] = (seq, time.monotonic())

    def write(self, p: int, seq: int, data: bytes) -> None:
        """Make ``data`` partition ``p``'s snapshot at ``seq`` (call after the producer flush
        that published everything the journal below ``seq`` produced)."""
        size = self._chunk_bytes
        chunks = max(1, -(-len(data) // size))
        view = memoryview(data)
        for chunk in range(chunks):
            self._put(p, _chunk_key(p, seq, chunk), bytes(view[chunk * size : (chunk + 1) * size]))
        old = self._heads.get(p)
        head = _Head(seq, chunks, len(data))
        self._put(p, _head_key(p), msgspec.msgpack.encode(head))
        self._heads[p] = head
        if old is not None and old.seq != seq:
            for chunk in range(old.chunks):
                self._put(p, _chunk_key(p, old.seq, chunk), None)

    def load(self, p: int) -> tuple[int, bytes] | None:
        """Partition ``p``'s newest complete snapshot as ``(seq, data)``, if it has one."""
        raw = self.table.data.get(_head_key(p))
        if raw is None:
            return None
        try:
            head = msgspec.msgpack.decode(raw, type=_Head)
        except msgspec.DecodeError:
            log.warning("partition %d: snapshot head does not decode; using the journal", p)
            return None
        parts: list[bytes] = []
        for chunk in range(head.chunks):
            part = self.table.data.get(_chunk_key(p, head.seq, chunk))
            if part is None:
                log.warning(
                    "partition %d: snapshot at %d lacks chunk %d of %d; using the journal",
                    p,
                    head.seq,
                    chunk,
                    head.chunks,
                )
                return None
            parts.append(part)
        data = b"".join(parts)
        if len(data) != head.size:
            log.warning("partition %d: snapshot at %d is truncated; using the journal", p, head.seq)
            return None
        self._heads[p] = head
        self._sweep(p, head)
        return head.seq, data

    def forget(self, p: int) -> None:
        """Another worker owns the partition now."""
        self._heads.pop(p, None)
        self._taken.pop(p, None)

    def _sweep(self, p: int, head: _Head) -> None:
        """Delete chunks of snapshots that never became current (a worker killed while writing
        one)."""
        prefix = b"%05d/" % p
        keep = b"%05d/%016d/" % (p, head.seq)
        for key in [
            k
            for k in list(self.table.data.keys())
            if k.startswith(prefix) and not k.startswith(keep) and not k.endswith(_HEAD)
        ]:
            self._put(p, key, None)

    def _put(self, p: int, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.table.data.pop(key, None)
            self.table.send_changelog(p, key, None, value_serializer="raw")
        else:
            self.table.data[key] = value
            self.table.send_changelog(p, key, value)
