"""Journals kept in a changelog-backed Faust table: one per partition, written in batches.

The key layout and the recovery rules are ``journal.py``'s. Callers write on behalf of a partition
from inside the agent (the current event's partition) or within ``acting_for``.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Final

from streams.worker.journal import (
    batch_length,
    decode_seq,
    encode_seq,
    entry_key,
    pack_batch,
    parse_key,
    published_key,
    unpack_batch,
)

log = logging.getLogger("posguard.worker")

# Entries per changelog message at most; a timer writes smaller batches every tick.
_BATCH: Final = 500
_BATCH_BYTES: Final = 256 * 1024
_ENTRY_OVERHEAD: Final = 5  # an entry's msgpack bin header in the batch


class JournalTable:
    """The journals of one table, with what each partition has written so far."""

    def __init__(self, table: Any, what: str, max_bytes: int = _BATCH_BYTES) -> None:
        self.table = table
        self._max_bytes = min(max_bytes, _BATCH_BYTES)
        """Entries' bytes per batch at most (below the broker's message size limit); a
        batch holds one entry at least, and entries are far smaller (dead letters' raw text is
        bounded by ``MAX_RAW_BYTES``)."""
        self.what = what
        """Names the journal in log lines."""
        self._batches: dict[int, deque[tuple[int, int, bytes]]] = {}
        self.published: dict[int, int] = {}
        """Per partition, the sequence number up to which everything is known published."""
        self.span: dict[int, tuple[int, int]] = {}
        """Per partition, as loaded: the first entry's sequence number and one past the last."""

    def append(self, p: int, entries: list[tuple[int, bytes]]) -> None:
        """Write ``(seq, encoded entry)`` pairs, contiguous, as batches of the partition."""
        start = 0
        while start < len(entries):
            end, size = start, 0
            while end < len(entries) and end - start < _BATCH:
                n = len(entries[end][1]) + _ENTRY_OVERHEAD
                if end > start and size + n > self._max_bytes:
                    break
                size += n
                end += 1
            first, last = entries[start][0], entries[end - 1][0]
            key = entry_key(p, first)
            value = pack_batch([entry for _, entry in entries[start:end]])
            self.table.data[key] = value
            self.table.send_changelog(p, key, value)
            self._batches.setdefault(p, deque()).append((first, last, key))
            start = end

    def trim(self, p: int, below: int) -> None:
        """Delete the partition's batches whose entries all lie below ``below``."""
        batches = self._batches.get(p)
        while batches and batches[0][1] < below:
            _, _, key = batches.popleft()
            self._delete(p, key)

    def load(self, p: int, skip_below: int = 0) -> list[tuple[int, bytes]]:
        """The partition's journal as recovered: ``(seq, encoded entry)`` in order, leaving out
        whole batches below ``skip_below`` (a snapshot holds what they did); ``span`` says
        where the journal starts and ends.

        Batches the changelog may lack (from the ``published`` mark on) are sent to it again.
        """
        prefix = b"%05d/" % p
        published = 0
        found: list[tuple[int, bytes, bytes]] = []
        for key, value in list(self.table.data.items()):
            if not key.startswith(prefix):
                continue
            _, seq = parse_key(key)
            if seq is None:
                published = decode_seq(value)
            else:
                found.append((seq, key, value))
        found.sort()
        batches: deque[tuple[int, int, bytes]] = deque()
        entries: list[tuple[int, bytes]] = []
        for i, (first, key, value) in enumerate(found):
            if batches and first != batches[-1][1] + 1:
                # Older batches whose deletion (trimming) never reached the changelog: the
                # journal is the contiguous run that ends with the newest batch.
                log.warning(
                    "%s %d: journal resumes at %d; older entries dropped", self.what, p, first
                )
                for _, _, stale in batches:
                    self._delete(p, stale)
                batches.clear()
                entries.clear()
            following = found[i + 1][0] if i + 1 < len(found) else None
            if following is not None and following <= skip_below:
                # Wholly below the snapshot: only its length is read (its array header).
                batches.append((first, first + batch_length(value) - 1, key))
            else:
                batch = unpack_batch(value)
                entries.extend((first + k, entry) for k, entry in enumerate(batch))
                batches.append((first, first + len(batch) - 1, key))
            if batches[-1][1] + 1 > published:
                # Possibly written to the local store (RocksDB) but lost on its way to the
                # changelog when the worker died: sent again, so the changelog has no hole.
                self.table.send_changelog(p, key, value)
        self._batches[p] = batches
        self.published[p] = published
        self.span[p] = (batches[0][0], batches[-1][1] + 1) if batches else (0, 0)
        return entries[max(0, skip_below - entries[0][0]) :] if entries else entries

    def mark_published(self, p: int, seq: int) -> None:
        """Record that every entry below ``seq`` and what it produced reached its topic (call
        after a producer flush)."""
        key, value = published_key(p), encode_seq(seq)
        self.table.data[key] = value
        self.table.send_changelog(p, key, value)
        self.published[p] = seq

    def forget(self, p: int) -> None:
        """Another worker owns the partition now."""
        self._batches.pop(p, None)
        self.published.pop(p, None)

    def _delete(self, p: int, key: bytes) -> None:
        self.table.data.pop(key, None)
        self.table.send_changelog(p, key, None, value_serializer="raw")
