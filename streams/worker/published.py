"""Marking what is published, and snapshots: the worker's timer that makes a takeover cheap.

After a producer flush, every alert, dead letter and card sale the journal's entries below a
partition's sequence number produced is on its topic, and every journal batch below it in the
changelog: the ``published`` mark says so (``journal_table.py``), and a rebuild publishes again
only from there. A snapshot due (``snapshots.py``) is started before the flush, at that very
sequence number, in a forked child, and written to its table in a later round, once the child is
done: nothing before a snapshot is ever published again.
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
    write_snapshots(worker)
    if not (upto or stage_upto):
        return
    snapshots = worker.snapshots
    for p, seq in upto.items():
        with acting_for(p):
            worker.write_journal(p, worker.inputs[p])
        if snapshots.due(p, seq) and not worker.taker.busy(p):
            worker.taker.start(p, seq, worker.inputs[p].pipeline.snapshot)
            snapshots.taken(p, seq)
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
    worker.cards.mark_published(stage_upto)


def write_snapshots(worker: StreamWorker, wait: bool = False) -> None:
    """Write the snapshots taken since (with ``wait``, once all are taken). Each was taken at a
    sequence number marked published in the same round, after its flush."""
    for p, seq, data in worker.taker.finished(wait):
        if p in worker.inputs:
            with acting_for(p):
                worker.snapshots.write(p, seq, data)
