"""Marking what is published, and snapshots: the worker's timer that makes a takeover cheap.

After a producer flush, every alert, dead letter and card sale the journal's entries below a
partition's sequence number produced is on its topic, and every journal batch below it in the
changelog: the ``published`` mark says so (``journal_table.py``), and a rebuild publishes again
only from there. A snapshot due (``snapshots.py``) is taken before the flush, at that very
sequence number, and written after it, so nothing before a snapshot is ever published again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.worker.acting import acting_for

if TYPE_CHECKING:
    from streams.worker.worker import StreamWorker


async def mark_published(worker: StreamWorker) -> None:
    """Record, per partition, up to where every alert is known to be on the alerts topic and
    every journal entry in the changelog; snapshot the partitions due for one."""
    upto = {
        p: part.pipeline.seq
        for p, part in worker.inputs.items()
        if part.pipeline.seq > worker.journals.published.get(p, 0)
    }
    stage_upto = worker.cards.unpublished()
    if not (upto or stage_upto):
        return
    taken: dict[int, bytes] = {}
    for p, seq in upto.items():
        with acting_for(p):
            worker.write_journal(p, worker.inputs[p])
        if worker.snapshots.due(p, seq):
            data = worker.inputs[p].pipeline.snapshot()
            if data is not None:
                taken[p] = data
    for q in stage_upto:
        with acting_for(q):
            worker.cards.write(q, worker.cards.owned[q])
    # After this flush every journal batch below ``seq`` is in the changelog too (and every
    # sale it made on the card topic): a rebuild re-sends only from the marker on.
    await worker.app.producer.flush()
    for p, seq in upto.items():
        if p in worker.inputs:
            with acting_for(p):
                worker.journals.mark_published(p, seq)
                if p in taken:
                    worker.snapshots.write(p, seq, taken[p])
                    worker.snapshots.taken(p, seq)
    worker.cards.mark_published(stage_upto)
