"""Partition snapshots in a changelog-backed table: a worker taking over a partition loads the
newest and feeds its engine only the journal written after it (``streams/worker/journal.py``).

A snapshot is the partition's state after the journal entries below its sequence number
(``PartitionPipeline.snapshot``). It is taken when the timer that marks what is published runs,
before the producer flush, and written after it: by then everything the entries below it produced
is on its topic and in the journal's changelog, so nothing before the snapshot ever has to be
published again.

Taking one encodes the whole state, about a microsecond per retained event: seconds for a large
partition, longer than the broker waits for a heartbeat from a worker whose loop is held. So it
is taken in a forked child (``SnapshotTaker``), as Redis takes its background saves: the child
has the state exactly as it was at the fork (copy-on-write) and writes it to a file under the data
directory; the worker goes on meanwhile, and writes the file to the table once the child is done.

A snapshot can be larger than a message, so it is written in chunks under
``PPPPP/SSSSSSSSSSSSSSSS/CCCCCC`` (partition, sequence number, chunk) and made current by one
small value under ``PPPPP/head`` written after the chunks; the chunks of the snapshot it replaces
are deleted then. A head whose chunks are not all there (a worker killed while writing) is
ignored, and so is a snapshot the journal no longer reaches: the journal alone rebuilds the
partition, as without snapshots.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
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
    about a microsecond per retained event, in a forked child (``SnapshotTaker``); a takeover
    then feeds its engine at most what was journaled since."""

    every_entries: int = 1_000_000
    every_s: float = 300.0

    def due(self, entries_since: int, seconds_since: float) -> bool:
        return entries_since >= self.every_entries or (
            entries_since > 0 and seconds_since >= self.every_s
        )


class SnapshotTaker:
    """Takes snapshots in forked children, one partition at a time each."""

    def __init__(self, directory: Path, fork: bool = hasattr(os, "fork")) -> None:
        self._dir = directory
        self._fork = fork
        self._running: dict[int, tuple[int, int, Path]] = {}
        """Per partition: the child's pid, the snapshot's sequence number, its file."""
        self._done: list[tuple[int, int, Path]] = []
        """Taken in this process (no ``fork``), to be collected."""
        if directory.is_dir():  # left by children of a worker that stopped meanwhile
            for stale in directory.glob("*.snapshot*"):
                stale.unlink(missing_ok=True)

    def busy(self, p: int) -> bool:
        return p in self._running

    def start(self, p: int, seq: int, take: Callable[[], bytes | None]) -> None:
        """Take partition ``p``'s snapshot at ``seq`` with ``take`` (in a child, with the state
        as it is now)."""
        self._dir.mkdir(parents=True, exist_ok=True)
        path = self._dir / f"{p:05d}-{seq:016d}.snapshot"
        if not self._fork:
            if _write(take, path) == 0:
                self._done.append((p, seq, path))
            return
        pid = os.fork()
        if pid == 0:  # the child: encode, write, leave without touching the parent's world
            os._exit(_write(take, path))
        self._running[p] = (pid, seq, path)

    def finished(self, wait: bool = False) -> Iterator[tuple[int, int, bytes]]:
        """``(partition, seq, snapshot)`` of every child done since the last call (with
        ``wait``, of every child, once done)."""
        done, self._done = self._done, []
        for p, (pid, seq, path) in list(self._running.items()):
            ended, status = os.waitpid(pid, 0 if wait else os.WNOHANG)
            if ended == 0:
                continue
            del self._running[p]
            code = os.waitstatus_to_exitcode(status)
            if code == 0:
                done.append((p, seq, path))
            else:
                log.warning("partition %d: taking the snapshot at %d failed (%d)", p, seq, code)
                path.unlink(missing_ok=True)
        for p, seq, path in done:
            data = path.read_bytes()
            path.unlink()
            yield p, seq, data

    def cancel(self, p: int) -> None:
        """Stop taking partition ``p``'s snapshot (another worker owns it now)."""
        running = self._running.pop(p, None)
        if running is not None:
            pid, _, path = running
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            path.unlink(missing_ok=True)


def _write(take: Callable[[], bytes | None], path: Path) -> int:
    """Exit status: 0 written, 3 nothing to take, 1 failed (the traceback on stderr)."""
    try:
        data = take()
        if data is None:
            return 3
        partial = path.with_suffix(".snapshot-partial")
        partial.write_bytes(data)
        partial.replace(path)
        return 0
    except BaseException:
        traceback.print_exc(file=sys.stderr)
        return 1


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
        last_seq, last_at = self._taken.setdefault(p, (0, time.monotonic()))
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
