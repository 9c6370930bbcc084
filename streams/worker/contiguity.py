"""Input read without holes: a message past a hole is held back and the consumer rewound.

The journal skips input it already holds by offset (``PartitionPipeline.offer``), so a message
that overtakes unread ones would make the worker treat them as journaled when they come, and
never feed them to the engine. Faust's consumer can deliver such a message: a batch abandoned
when flow stops (recovery, rebalance) leaves the client's position past records nobody was given,
and if the fetcher resumes before the seek to committed offsets (faust-streaming/faust#216, #596)
the next message arrives past a hole, which Faust then records as a gap and acknowledges. Seen on
Tansu after a ``kill -9``: settlements offset 3, then 144.

``OffsetGuard`` keeps, per topic-partition, the offset it expects next. A message past it is not
taken; the driver seeks back to the expected offset (``SEEK``) and drops what arrives past the
hole until the expected message comes (``IGNORE``). A seek does not empty what Faust has
buffered: after it is done, the rest of the batch fetched before it keeps coming, each message
later than the one before. Only a message at or before the first one seen past the hole shows
where the seek landed. Offsets can be missing from a log for good (retention deleted them;
transaction markers take offsets): when two seeks in a row land on the same message, the hole
is real and the message is taken. One is not enough: Faust's own seek to the committed offsets at
the end of a recovery can land on that message just after the guard's seek (the committed offset
of a worker that acknowledged a gap). Seen on Tansu after a ``kill -9``: a seek to 1395, then
twenty buffered messages from 1503 on, each of which once asked for another seek.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass

CONFIRMATIONS = 2
"""Seeks that must each lead straight back to the same message before a hole counts as real."""
MAX_SEEKS = 10
"""Seeks for one hole before the guard takes what comes (a consumer that keeps skipping)."""
STALE_LIMIT = 20_000
"""Messages read past a hole after a seek, all later than the first one seen, before the seek
counts as lost and is asked for again: more than can have been fetched before it (the stream's
buffer, Faust's ``stream_buffer_maxsize`` of 4,096, plus a fetch or two of a partition)."""


class Admit(enum.Enum):
    TAKE = "take"
    """Hand the message on (it may be an old one the journal already holds)."""
    SEEK = "seek"
    """Past a hole: drop it, and seek to ``OffsetGuard.expected``."""
    IGNORE = "ignore"
    """Past a hole whose seek is under way: drop it; it is read again after the seek."""


@dataclass(slots=True)
class _Hole:
    seen: int
    """The first offset that arrived past the hole since the last seek was asked for."""
    sought: bool = False
    seeks: int = 1
    landed: int = -1
    """Where the last seek landed (the first message at or before ``seen`` after it)."""
    repeats: int = 0
    """Seeks in a row that landed on ``landed``."""
    stale: int = 0
    """Messages after the last seek that were all still from before it."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A hole the guard accepted: offsets ``first``..``last`` are not in the log."""

    first: int
    last: int
    seeks: int


class OffsetGuard:
    """Per topic-partition (any hashable key): the next offset expected, and open holes."""

    __slots__ = ("_holes", "_next", "skipped")

    def __init__(self) -> None:
        self._next: dict[Hashable, int] = {}
        self._holes: dict[Hashable, _Hole] = {}
        self.skipped: list[tuple[Hashable, Skipped]] = []
        """Holes accepted since the driver last looked (it logs and clears them)."""

    def expect(self, key: Hashable, offset: int) -> None:
        """Everything below ``offset`` is held already (a journal was restored)."""
        self._next[key] = offset
        self._holes.pop(key, None)

    def expected(self, key: Hashable) -> int | None:
        return self._next.get(key)

    def forget(self, key: Hashable) -> None:
        self._next.pop(key, None)
        self._holes.pop(key, None)

    def admit(self, key: Hashable, offset: int) -> Admit:
        """What to do with the message at ``offset``. Without an expectation (the first message
        of a partition nothing was restored for) every offset is taken."""
        expected = self._next.get(key)
        if expected is None or offset == expected:
            self._next[key] = offset + 1
            self._holes.pop(key, None)
            return Admit.TAKE
        if offset < expected:
            return Admit.TAKE  # delivered again: the pipeline knows it has it
        hole = self._holes.get(key)
        if hole is None:
            self._holes[key] = _Hole(offset)
            return Admit.SEEK
        if not hole.sought:
            return Admit.IGNORE
        if offset > hole.seen:
            # Still the batch read before the seek (each one later than the last).
            hole.stale += 1
            if hole.stale < STALE_LIMIT:
                return Admit.IGNORE
        elif offset == hole.landed:
            hole.repeats += 1
        else:
            hole.landed, hole.repeats = offset, 1
        if hole.repeats >= CONFIRMATIONS or hole.seeks >= MAX_SEEKS:
            # Every seek led straight here again: nothing between is stored.
            del self._holes[key]
            self._next[key] = offset + 1
            self.skipped.append((key, Skipped(expected, offset - 1, hole.seeks)))
            return Admit.TAKE
        hole.seen, hole.sought, hole.stale = offset, False, 0
        hole.seeks += 1
        return Admit.SEEK

    def seek_failed(self, key: Hashable) -> None:
        """The seek did not happen: the next message past the hole asks for it again."""
        self._holes.pop(key, None)

    def sought(self, key: Hashable) -> None:
        """The seek for ``key``'s hole is done: from now on a message at or before the first one
        seen past the hole was read after it (later ones may still be from before it)."""
        hole = self._holes.get(key)
        if hole is not None:
            hole.sought = True
