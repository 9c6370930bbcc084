"""A priority queue of deadlines tuned for event time: O(1) when deadlines come in order.

Deadlines are ``event time + a constant``, so in a time-ordered stream they arrive sorted and a
FIFO is enough; only late events (rare) go through a heap. Popping takes from whichever is due
first, so the order is exactly that of one heap.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator

Entry = tuple[int, str, str]  # (deadline, merchant_id, id)


class Deadlines:
    __slots__ = ("_heap", "_queue")

    def __init__(self) -> None:
        self._queue: deque[Entry] = deque()
        self._heap: list[Entry] = []

    def push(self, entry: Entry) -> None:
        queue = self._queue
        if queue:
            # Deadlines first: compiled, two integers compare natively, where comparing the
            # tuples boxes both; they differ nearly always.
            last = queue[-1]
            if entry[0] < last[0] or (entry[0] == last[0] and entry < last):
                heapq.heappush(self._heap, entry)
                return
        queue.append(entry)

    def due(self, before: int) -> bool:
        """True when some deadline is strictly before ``before``."""
        queue, heap = self._queue, self._heap
        return bool(queue and queue[0][0] < before) or bool(heap and heap[0][0] < before)

    def pop_due(self, before: int) -> Iterator[Entry]:
        """Remove and yield, earliest first, every entry whose deadline is before ``before``."""
        queue, heap = self._queue, self._heap
        while True:
            if queue and queue[0][0] < before and not (heap and heap[0] < queue[0]):
                yield queue.popleft()
            elif heap and heap[0][0] < before:
                yield heapq.heappop(heap)
            else:
                return

    def entries(self) -> list[Entry]:
        """Every deadline, earliest first (for a snapshot)."""
        return sorted([*self._queue, *self._heap])

    def load(self, entries: list[Entry]) -> None:
        """Hold exactly ``entries`` (sorted, as ``entries`` gives them): popping yields the same
        order as from the queue and heap they were taken from."""
        self._queue = deque(entries)
        self._heap = []

    def __len__(self) -> int:
        return len(self._queue) + len(self._heap)
