"""The inputs of one partition (transactions, settlements, outcomes, pay-outs) merged on event
time, as Kafka Streams does it.

Each topic-partition is read in offset order, which is (nearly) event-time order. Among the
buffered heads the earliest event goes first. While a side's buffer is empty, another side may
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
FEEDBACK = 2
PAYOUTS = 3
SIDES = (TRANSACTIONS, SETTLEMENTS, FEEDBACK, PAYOUTS)
NEVER = (float("-inf"),) * len(SIDES)
"""Per side: the broker never said that side had nothing unread."""


@dataclass(frozen=True, slots=True)
class Grace:
    now: float
    quiet_s: float
    """Hold before overtaking a side that received nothing for ``active_s``."""
    active_s: float
    """Hold before overtaking a side that received something within the last ``active_s``."""
    confirmed: tuple[float, ...] = NEVER
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
    """Buffers per side (``SIDES``); on a tie of event times the lower side goes first."""

    __slots__ = ("_last_arrival", "_queues")

    def __init__(self) -> None:
        self._queues: tuple[deque[tuple[int | None, float, T]], ...] = tuple(deque() for _ in SIDES)
        self._last_arrival = [float("-inf")] * len(SIDES)

    def push(self, side: int, ts: int | None, item: T, arrived: float = 0.0) -> None:
        """Buffer one record of ``side``; ``ts`` None marks input that has no event time;
        ``arrived`` is when the driver received it (any monotonic clock)."""
        self._queues[side].append((ts, arrived, item))
        self._last_arrival[side] = arrived

    def buffered(self, side: int) -> int:
        return len(self._queues[side])

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues)

    def pop_head(self, side: int) -> T:
        """Remove and return ``side``'s oldest record (released by other means)."""
        return self._queues[side].popleft()[2]

    def items(self, side: int) -> list[T]:
        """The records ``side`` buffers, oldest first."""
        return [item for _, _, item in self._queues[side]]

    def held_back_by(self, since: float) -> tuple[int, ...]:
        """The sides that are empty while the earliest head (with an event time) has been held
        since ``since`` or longer; none when no record waits that way."""
        head = self._earliest()
        if head is None or self._queues[head][0][1] > since:
            return ()
        return tuple(side for side, queue in enumerate(self._queues) if not queue)

    def _earliest(self) -> int | None:
        """The side whose head has the earliest event time (the lower side on a tie)."""
        best: int | None = None
        best_ts = 0
        for side, queue in enumerate(self._queues):
            if queue:
                ts = queue[0][0]
                if ts is not None and (best is None or ts < best_ts):
                    best, best_ts = side, ts
        return best

    def pop_ready(
        self, caught_up: Callable[[int], bool], grace: Grace | None = None
    ) -> Iterator[tuple[int, T]]:
        """Yield ``(side, item)`` in merged order while the order is certain.

        ``caught_up(side)`` says whether ``side`` has no unread record left; it is asked only
        when that side's buffer is empty. With ``grace``, a record overtakes an empty side only
        once it has been held as long as the grace says.
        """
        queues = self._queues
        if grace is None:
            due = [float("inf")] * len(queues)
        else:
            due = [grace.due(side, self._last_arrival[side]) for side in SIDES]
        while True:
            for side, queue in enumerate(queues):  # input without an event time goes at once
                if queue and queue[0][0] is None:
                    yield side, queue.popleft()[2]
                    break
            else:
                best = self._earliest()
                if best is None:
                    return
                arrived = queues[best][0][1]
                for side, queue in enumerate(queues):
                    if not queue and not (arrived <= due[side] and caught_up(side)):
                        return
                yield best, queues[best].popleft()[2]
