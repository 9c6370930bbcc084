"""Table writes outside the agent (timers, web views), filed under the partition they are for."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from faust import streams as faust_streams


class _PartitionMark:
    """Stands for "an event of partition p" where Faust asks which partition a write is for."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, partition: int) -> None:
        self.message = _MarkMessage(partition)


class _MarkMessage:
    __slots__ = ("partition",)

    def __init__(self, partition: int) -> None:
        self.partition = partition


@contextmanager
def acting_for(partition: int) -> Iterator[None]:
    """Writes outside the agent (timers, web views) go to ``partition``'s table partition: the
    RocksDB store files a write under the current event's partition, and the memory store
    ignores it."""
    mark = _PartitionMark(partition)
    token = faust_streams._current_event.set(weakref.ref(mark))  # type: ignore[arg-type]
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)
