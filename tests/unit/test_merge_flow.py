"""Backpressure: a topic-partition whose merge buffer is full stops being fetched until it is
drained to the low mark (``streams/worker/flow.py``)."""

from __future__ import annotations

from faust.types import TP

from streams.worker.flow import MergeFlow


class _Consumer:
    def __init__(self) -> None:
        self.paused: set[TP] = set()

    def pause_partitions(self, tps: set[TP]) -> None:
        self.paused |= tps

    def resume_partitions(self, tps: set[TP]) -> None:
        self.paused -= tps


def test_paused_at_the_high_mark_and_resumed_at_the_low_mark() -> None:
    consumer = _Consumer()
    flow = MergeFlow(lambda: consumer, high=10, low=4)
    tx, st = TP("tx", 0), TP("st", 0)
    buffered = {tx: 0, st: 0}
    for n in range(1, 12):
        buffered[tx] = n
        flow.offered("tx", 0, n)
    assert consumer.paused == {tx} and flow.pauses == 1  # paused once, not at every record
    flow.offered("st", 0, 3)
    buffered[tx] = 5
    flow.drained(buffered.get)
    assert consumer.paused == {tx}
    buffered[tx] = 4
    flow.drained(buffered.get)
    assert consumer.paused == set() and not flow.paused


def test_a_revoked_or_unknown_partition_is_not_resumed_by_us() -> None:
    consumer = _Consumer()
    flow = MergeFlow(lambda: consumer, high=2, low=1)
    tp = TP("tx", 3)
    flow.offered("tx", 3, 2)
    flow.forget({tp})
    flow.drained(lambda _: None)
    assert tp in consumer.paused  # Faust itself forgets a revoked partition's pause
    flow.offered("tx", 3, 2)
    flow.drained(lambda _: None)  # no longer this worker's: nothing to wait for
    assert not flow.paused
