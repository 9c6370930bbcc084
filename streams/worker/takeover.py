"""Taking over a partition: its pipeline from the newest snapshot and the journal after it, or
from the whole journal when there is no snapshot it can use."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from streams.engine.snapshot import SnapshotRefusedError
from streams.worker.journal import decode_entry
from streams.worker.journal_table import JournalTable
from streams.worker.pipeline import PartitionPipeline
from streams.worker.snapshots import SnapshotTable

log = logging.getLogger("posguard.worker")


@dataclass(frozen=True, slots=True)
class Takeover:
    """How a partition was rebuilt (logged, and kept for ``/api/status``)."""

    snapshot_seq: int | None
    """The snapshot loaded (its sequence number), or None: the whole journal was fed."""
    journal_entries: int
    """Journal entries fed to the engine."""
    seconds: float


def take_over(
    p: int, pipe: PartitionPipeline, journals: JournalTable, snapshots: SnapshotTable
) -> Takeover:
    """Rebuild partition ``p``'s fresh pipeline from the tables Faust recovered."""
    started = time.perf_counter()
    found = snapshots.load(p)
    entries = journals.load(p, 0 if found is None else found[0])
    first, end = journals.span[p]
    snapshot_seq: int | None = None
    if found is not None:
        seq, data = found
        if not first <= seq <= end or first == end:
            log.warning(
                "partition %d: the snapshot at entry %d is outside the journal (%s); "
                "rebuilding from the journal",
                p,
                seq,
                "empty" if first == end else f"entries {first} to {end - 1}",
            )
        else:
            try:
                pipe.load_snapshot(data)
                snapshot_seq = seq
            except SnapshotRefusedError as refused:
                log.warning(
                    "partition %d: snapshot at entry %d refused: %s; rebuilding from the journal",
                    p,
                    seq,
                    refused,
                )
        if snapshot_seq is None:
            entries = journals.load(p)
    published = journals.published[p]
    if entries:
        pipe.restore(((seq, decode_entry(data)) for seq, data in entries), published)
    done = Takeover(snapshot_seq, len(entries), time.perf_counter() - started)
    if snapshot_seq is not None or entries:
        source = (
            "the journal"
            if snapshot_seq is None
            else f"the snapshot at entry {snapshot_seq} and the journal after it"
        )
        log.warning(
            "partition %d: engine rebuilt from %s (%d entries fed) in %.1f s",
            p,
            source,
            done.journal_entries,
            done.seconds,
        )
    snapshots.taken(p, pipe.seq)
    return done
