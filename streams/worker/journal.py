"""The journal: what each partition's engine was fed, in the order it was fed.

The engine is a deterministic function of its ordered input, so this journal *is* its durable
state: it lives in a changelog-backed Faust table, and a worker that takes over a partition (after
a restart, a ``kill -9`` or a rebalance) rebuilds the engine by feeding the journal again. Each
entry also records the source offset, so input the journal already holds is recognised and
skipped when Kafka delivers it again, and the journal is trimmed once entries are older than the
engine's retention.

Entries are written in batches, one table key per batch: a changelog message per input would
cost as much as the rest of the worker. Keys are ``PPPPP/SSSSSSSSSSSSSSSS`` (partition, sequence
number of the batch's first entry), so a partition's batches sort in feeding order;
``PPPPP/published`` holds the sequence number up to which every alert the entries produced is
known to have reached the alerts topic, and every entry the changelog.

With the RocksDB store a batch is on local disk before it is in the changelog; a worker killed in
between restarts with batches the changelog lacks. The rebuild sends the batches from the
``published`` mark on again, so the changelog (what another worker would rebuild from) never
has a hole; and it starts at the newest contiguous run of batches, so a lost deletion of trimmed
batches leaves nothing behind.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final

import msgspec

from streams.alerts import Alert

FLUSH: Final = 2
"""An entry's kind when the worker ran the engine's open step because its inputs were idle;
other entries' kind is their input's side (``merge.TRANSACTIONS``, ``merge.SETTLEMENTS``), 3
for ``merge.FEEDBACK`` and 5 for ``merge.PAYOUTS`` (see ``entry_kind``)."""


CONFIG: Final = 4
"""An entry's kind when the partition switched to a live configuration version (the entry's
``offset`` is the version number): a rebuild switches at the same place (``config_log.py``)."""


_KIND_OF_SIDE: Final = (0, 1, 3, 5)
_SIDE_OF_KIND: Final = {kind: side for side, kind in enumerate(_KIND_OF_SIDE)}


def entry_kind(side: int) -> int:
    """The journal entry kind of an input side (``FLUSH`` and ``CONFIG`` are not sides)."""
    return _KIND_OF_SIDE[side]


def entry_side(kind: int) -> int:
    """The input side of a journal entry kind other than ``FLUSH`` and ``CONFIG``."""
    return _SIDE_OF_KIND[kind]


JOURNAL_MARGIN_US: Final = 2 * 86400_000_000
"""How much longer than the rules' retention a journal keeps its entries."""


class Entry(msgspec.Struct, array_like=True, frozen=True):
    """One input as fed: an accepted event as its contract fields, bad input as its raw bytes
    masked, with the reason it was rejected for (masking can turn a rejected card number into an
    acceptable token, so it is never decoded again)."""

    kind: int
    offset: int
    raw: bytes
    reason: str | None = None
    detail: str | None = None


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Entry)
_PUBLISHED: Final = b"published"


def encode_entry(entry: Entry) -> bytes:
    return _encoder.encode(entry)


def decode_entry(data: bytes) -> Entry:
    return _decoder.decode(data)


_batch_encoder = msgspec.msgpack.Encoder()
_batch_decoder = msgspec.msgpack.Decoder(list[bytes])


def pack_batch(entries: list[bytes]) -> bytes:
    """Encoded entries as one table value."""
    return _batch_encoder.encode(entries)


def unpack_batch(data: bytes) -> list[bytes]:
    """The encoded entries of one table value."""
    return _batch_decoder.decode(data)


def batch_length(data: bytes) -> int:
    """How many entries a ``pack_batch`` value holds, read from its MessagePack array header
    alone."""
    head = data[0]
    if 0x90 <= head <= 0x9F:
        return head & 0x0F
    if head == 0xDC:
        return int.from_bytes(data[1:3], "big")
    if head == 0xDD:
        return int.from_bytes(data[1:5], "big")
    raise ValueError(f"not a journal batch (header byte {head:#x})")


def entry_key(partition: int, seq: int) -> bytes:
    return b"%05d/%016d" % (partition, seq)


def published_key(partition: int) -> bytes:
    return b"%05d/" % partition + _PUBLISHED


def parse_key(key: bytes) -> tuple[int, int | None]:
    """``(partition, seq)``; seq is None for the published marker."""
    head, _, tail = key.partition(b"/")
    return int(head), (None if tail == _PUBLISHED else int(tail))


def encode_seq(seq: int) -> bytes:
    return b"%d" % seq


def decode_seq(data: bytes) -> int:
    return int(data)


_SAMPLE_EVERY: Final = 1024


class JournalCursor:
    """Numbers a journal's entries and says where it may be trimmed.

    Every 1024th entry's sequence number is remembered with the newest event time seen then;
    once that time is ``keep_us`` behind the newest, the entries before it are past use.
    """

    __slots__ = ("_keep_us", "_samples", "newest", "seq")

    def __init__(self, keep_us: int) -> None:
        self._keep_us = keep_us
        self._samples: deque[tuple[int, int]] = deque()
        self.seq = 0
        """Sequence number of the next entry."""
        self.newest = -(2**63)
        """The newest event time the journal's entries carried."""

    def state(self) -> tuple[int, int, list[tuple[int, int]]]:
        """``(seq, newest, samples)``, for a snapshot."""
        return self.seq, self.newest, list(self._samples)

    def load_state(self, state: tuple[int, int, list[tuple[int, int]]]) -> None:
        self.seq, self.newest, samples = state
        self._samples = deque(samples)

    def restored(self, seq: int, what: str) -> None:
        """Entry ``seq`` of the journal being restored (``what``'s) was fed again; the first
        one restored starts the count, and the rest must follow without a hole."""
        if self.seq == 0:  # nothing counted yet: the journal starts here
            self.seq = seq
        assert seq == self.seq, f"journal of {what} has a hole at {seq}"
        self.count(seq)

    def count(self, seq: int) -> None:
        """Entry ``seq`` was written (or restored)."""
        self.seq = seq + 1
        if not seq % _SAMPLE_EVERY:
            self._samples.append((seq, self.newest))

    def trim_below(self) -> int | None:
        """A sequence number below which entries may now be deleted, if any."""
        samples = self._samples
        if samples and samples[0][1] < self.newest - self._keep_us:
            upto, _ = samples.popleft()
            return upto
        return None


@dataclass(slots=True)
class JournaledOutput:
    """What a journaled stage hands its driver, carried out in this order: journal, publish,
    then acknowledge."""

    journal: list[tuple[int, bytes]] = field(default_factory=list)
    """``(seq, encoded entry)`` to append to the journal."""
    trim_below: int | None = None
    """Journal entries below this sequence number are past retention and may be deleted."""
    alerts: list[Alert] = field(default_factory=list)
    # Alerts rebuilt from the journal that already reached the alerts topic: for the worker's
    # own view (API, gauges), not to publish again.
    restored: list[Alert] = field(default_factory=list)

    def write(self, cursor: JournalCursor, entry: bytes) -> None:
        """Journal ``entry`` as ``cursor``'s next sequence number, and note how far the journal
        may be trimmed."""
        seq = cursor.seq
        self.journal.append((seq, entry))
        cursor.count(seq)
        upto = cursor.trim_below()
        if upto is not None:
            self.trim_below = upto
