"""Two inputs of one partition merged on event time, as Kafka Streams does it.

Each topic-partition is read in offset order, which is (nearly) event-time order. Among the two
buffered heads the earlier event goes first. When one side's buffer is empty, the other side may
only go ahead if the empty side has nothing more to read (it is caught up with its high
watermark); otherwise its next record is in flight and might be earlier. This keeps a worker that
catches up on a backlog from seeing a day of settlements before the transactions they settle.
Bad input (no event time) is released as soon as it reaches the head of its buffer.

"Caught up" is only as fresh as the last fetch, and producers batch per partition, so a record
written to one topic just before a record of the other may become visible just after it. Like
Kafka Streams' ``max.task.idle.ms``, a record may only overtake an empty side once it has been
held for a grace period (``Grace``): short while the other side is quiet, longer while it is
active (in the middle of a settlement batch, whose lines share one timestamp and must meet the
engine in one step). In a backlog both sides are full and nothing waits.

The long grace is cut short by asking the broker: once a record has been held for the short grace,
an end offset fetched *after* it arrived that says the active side has nothing unread (``Grace``'s
``confirmed``) lets it go. The record was on the broker before that question, and so was every
record written before it, by the same producer or an earlier one; what the question cannot see
is a record not yet written, and a batch that pauses longer than the short grace is split, the
same as with a quiet side.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

TRANSACTIONS = 0
SETTLEMENTS = 1


@dataclass(frozen=True, slots=True)
class Grace:
    now: float
    quiet_s: float
    """Hold before overtaking a side that received nothing for ``active_s``."""
    active_s: float
    """Hold before overtaking a side that received something within the last ``active_s``."""
    confirmed: tuple[float, float] = (float("-inf"), float("-inf"))
    """Per side, when the broker was last asked for its end offset and the answer was that
    this side had nothing unread (same clock as ``now``)."""

    def due(self, empty_side: int, last_arrival: float) -> float:
        """A record of the other side that arrived no later than this may overtake
        ``empty_side``, whose last record arrived at ``last_arrival``."""
        active = self.now - last_arrival < self.active_s
        if not active:
            return self.now - self.quiet_s
        # Held the short grace, and the broker was asked after it arrived.
        confirmed = min(self.now - self.quiet_s, self.confirmed[empty_side])
        return max(self.now - self.active_s, confirmed)


class TimeMerger(Generic[T]):
    """Buffers for side 0 (transactions) and side 1 (settlements); ties go to side 0."""

    __slots__ = ("_last_arrival", "_queues")

    def __init__(self) -> None:
        self._queues: tuple[
            deque[tuple[int | None, float, T]], deque[tuple[int | None, float, T]]
        ] = (
            deque(),
            deque(),
        )
        self._last_arrival = [float("-inf"), float("-inf")]

    def push(self, side: int, ts: int | None, item: T, arrived: float = 0.0) -> None:
        """Buffer one record of ``side``; ``ts`` None marks input that has no event time;
        ``arrived`` is when the driver received it (any monotonic clock)."""
        self._queues[side].append((ts, arrived, item))
        self._last_arrival[side] = arrived

    def buffered(self, side: int) -> int:
        return len(self._queues[side])

    def __len__(self) -> int:
        return len(self._queues[0]) + len(self._queues[1])

    def pop_head(self, side: int) -> T:
        """Remove and return ``side``'s oldest record (released by other means)."""
        return self._queues[side].popleft()[2]

    def items(self, side: int) -> list[T]:
        """The records ``side`` buffers, oldest first."""
        return [item for _, _, item in self._queues[side]]

    def held_back_by(self, since: float) -> int | None:
        """The side that is empty while the other side's head (with an event time) has been
        held since ``since`` or longer; None when no record waits that way."""
        for side, queue in enumerate(self._queues):
            other = self._queues[1 - side]
            if not queue and other and other[0][0] is not None and other[0][1] <= since:
                return side
        return None

    def pop_ready(
        self, caught_up: Callable[[int], bool], grace: Grace | None = None
    ) -> Iterator[tuple[int, T]]:
        """Yield ``(side, item)`` in merged order while the order is certain.

        ``caught_up(side)`` says whether ``side`` has no unread record left; it is asked only
        when that side's buffer is empty. With ``grace``, a record overtakes an empty side only
        once it has been held as long as the grace says.
        """
        txns, lines = self._queues
        if grace is None:
            txn_due = line_due = float("inf")
        else:
            txn_due = grace.due(SETTLEMENTS, self._last_arrival[SETTLEMENTS])
            line_due = grace.due(TRANSACTIONS, self._last_arrival[TRANSACTIONS])
        while True:
            if txns and txns[0][0] is None:
                yield TRANSACTIONS, txns.popleft()[2]
            elif lines and lines[0][0] is None:
                yield SETTLEMENTS, lines.popleft()[2]
            elif txns and lines:
                ts_txn, ts_line = txns[0][0], lines[0][0]
                assert ts_txn is not None and ts_line is not None
                if ts_line < ts_txn:
                    yield SETTLEMENTS, lines.popleft()[2]
                else:
                    yield TRANSACTIONS, txns.popleft()[2]
            elif txns and txns[0][1] <= txn_due and caught_up(SETTLEMENTS):
                yield TRANSACTIONS, txns.popleft()[2]
            elif lines and lines[0][1] <= line_due and caught_up(TRANSACTIONS):
                yield SETTLEMENTS, lines.popleft()[2]
            else:
                return
