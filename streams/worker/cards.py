"""Card velocity across partitions: approved sales repartitioned by card, merged on event time.

Input is keyed by merchant, so every rule but one is local to a partition. Card velocity is not: a
card used at five merchants may touch five partitions. Each partition's engine therefore hands
its approved sales over (``streams.engine.txn_rules.RoutedRules``); the worker sends them, once
journaled, to the card topic, in one ``SaleBatch`` per card partition and tick (one message per
sale would double Faust's cost per event). A ``CardStage`` per card partition runs the velocity
rule.

Like an engine merging its two topics, a stage merges its sources (the input partitions) on
event time. Every batch carries its source's clock (``Engine.clock``): nothing that source sends
later is earlier, unless its engine ran it late. The earliest head goes first once every source
with nothing buffered has a clock past it. A source that is behind (catching up on a backlog, or
rebuilding its engine) is waited for however long it takes; only a source that said it is idle
(it has read everything and closed its last step) is overtaken, once the head has waited
``grace``, and a source that never sent anything once it has waited ``unheard_grace``: a partition
with no traffic must not hold up the rest, but one whose worker has not read its first message
yet (a worker starting, or slow on a loaded machine) must not be overtaken after a blink either:
the sales it is about to send would be run late. Sales a source's engine ran late keep their
place after what that source sent before them, and are run on arrival when the stage is already
past them; the velocity rule then also judges the windows that end at the card's later sales, so
a sale run late still completes the pattern it belongs to (``streams/engine/velocity.py``).
With one input partition a stage therefore sees the sales in exactly the order the engine made
them, and the stream's velocity alerts are replay's.

Each sale carries its source's journal position (entry sequence number, index within the entry),
which is the same when that partition is rebuilt from its journal and sends the sale again. The
stage skips what it already holds, and journals what it ran, in order: like a partition's
journal, that is its durable state, rebuilt by running it again.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import msgspec

from streams.config import Config
from streams.config_log import ConfigSchedule, LiveVersion, stamp
from streams.engine.outbox import Outbox
from streams.engine.state import SWEEP_EVERY_US
from streams.engine.velocity import Velocity
from streams.events import Transaction
from streams.worker.journal import JOURNAL_MARGIN_US, JournalCursor, JournaledOutput

_NEVER: Final = -(2**63)


class Sale(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """An approved sale as the velocity rule needs it, with its place in its source's journal."""

    seq: int
    index: int
    ts: int
    """The time the velocity rule measures with (``Transaction.ts``)."""
    card_token: str
    merchant_id: str
    txn_id: str
    at: int = 0
    """Its engine's time for it (``Transaction.at``): the merge order. Absent (0) in batches of
    an older worker, which then merge on ``ts``."""

    @classmethod
    def of(cls, seq: int, index: int, t: Transaction) -> Sale:
        return cls(seq, index, t.ts, t.card_token, t.merchant_id, t.txn_id, t.at)


class SaleBatch(msgspec.Struct, array_like=True, gc=False):
    """One card-topic message: a source partition's sales for one card partition, and its clock."""

    source: int
    clock: int
    sales: list[Sale]
    idle: bool = False
    """The source has read all its input and closed its last step."""


class Released(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A stage journal entry: a sale as it was run, in the place it was run."""

    source: int
    eff: int
    sale: Sale


_encoder = msgspec.msgpack.Encoder()
_batch_decoder = msgspec.msgpack.Decoder(SaleBatch)
_released_decoder = msgspec.msgpack.Decoder(Released)


def encode_batch(batch: SaleBatch) -> bytes:
    return _encoder.encode(batch)


def decode_batch(data: bytes) -> SaleBatch:
    return _batch_decoder.decode(data)


_SALE_OVERHEAD: Final = 64
"""Bytes of an encoded ``Sale`` besides its three strings' UTF-8 (an array header, four integers
of up to 9 bytes, three string headers of up to 5): an upper bound."""


def sale_batches(
    source: int, clock: int, idle: bool, sales: list[Sale], max_bytes: int
) -> list[SaleBatch]:
    """The batch of ``sales`` as messages of at most ``max_bytes`` each (a backlog makes many
    sales per tick). Only the last carries the clock and ``idle``: a stage must not take the
    source's clock as passed before it holds every sale sent with it."""
    batches: list[SaleBatch] = []
    part: list[Sale] = []
    size = _SALE_OVERHEAD
    for sale in sales:
        n = _SALE_OVERHEAD + len(sale.card_token.encode()) + len(sale.merchant_id.encode())
        n += len(sale.txn_id.encode())
        if part and size + n > max_bytes:
            batches.append(SaleBatch(source, _NEVER, part, False))
            part, size = [], _SALE_OVERHEAD
        part.append(sale)
        size += n
    batches.append(SaleBatch(source, clock, part, idle))
    return batches


def card_partition(card_token: str, partitions: int) -> int:
    """The card partition of a card: stable across processes (``hash`` is salted per process)."""
    return zlib.crc32(card_token.encode()) % partitions


@dataclass(slots=True)
class StageOutput(JournaledOutput):
    """What the driver must carry out for one card partition (see ``JournaledOutput``)."""

    released: list[int] = field(default_factory=list)
    """The driver's token (``offer``) of every sale run, once per sale."""


class CardStage:
    """Card velocity for one card partition, over the sales of every source partition."""

    def __init__(
        self,
        partition: int,
        sources: int,
        config: Config,
        versions: Iterable[LiveVersion] = (),
    ) -> None:
        self.partition = partition
        self._outbox = Outbox()
        self.velocity = Velocity(config, self._outbox)
        self._window_us = config.velocity.window_us
        self.schedule = ConfigSchedule(versions)
        """Live configuration: velocity switches before the first sale (in merged order) at or
        after a version's ``effective_at``, where the engine of replay switches too."""
        self._switch_at = self.schedule.next_effective_us()
        self.cursor = JournalCursor(config.retention_us + JOURNAL_MARGIN_US)
        self._queues: list[deque[tuple[int, float, Sale, int]]] = []
        self._clock: list[int] = []
        self._last_eff: list[int] = []
        self._idle: list[bool] = []
        self._heard: list[bool] = []
        self._held: list[tuple[int, int]] = []
        self._add_sources(sources)
        self.frontier = _NEVER
        """The time of the last sale run (in merged order)."""
        self._next_sweep = _NEVER
        self.out = StageOutput()

    def _add_sources(self, upto: int) -> None:
        while len(self._queues) < upto:
            self._queues.append(deque())
            self._clock.append(_NEVER)
            self._last_eff.append(_NEVER)
            self._idle.append(True)  # never heard of: may be a partition without traffic
            self._heard.append(False)
            self._held.append((-1, -1))

    # -- feeding ----------------------------------------------------------------------------------

    def offer(self, batch: SaleBatch, token: int, arrived: float) -> int:
        """Buffer a batch's new sales (``token`` comes back in ``released``); how many were new."""
        source = batch.source
        self._add_sources(source + 1)
        queue = self._queues[source]
        held = self._held[source]
        last_eff = self._last_eff[source]
        new = 0
        for sale in batch.sales:
            position = (sale.seq, sale.index)
            if position <= held:
                continue  # sent again by a rebuilt source
            held = position
            last_eff = max(sale.at or sale.ts, last_eff)
            queue.append((last_eff, arrived, sale, token))
            new += 1
        self._held[source] = held
        self._last_eff[source] = last_eff
        self._clock[source] = max(self._clock[source], batch.clock)
        self._idle[source] = batch.idle
        self._heard[source] = True
        return new

    def buffered(self) -> int:
        return sum(len(q) for q in self._queues)

    def release(self, now: float, grace_s: float, unheard_grace_s: float | None = None) -> None:
        """Run every buffered sale whose place in the merged order is certain, or that waited
        ``grace_s`` for idle sources only (``unheard_grace_s``, by default the same, for sources
        that never sent anything)."""
        queues, clocks, idle, heard = self._queues, self._clock, self._idle, self._heard
        unheard = grace_s if unheard_grace_s is None else max(grace_s, unheard_grace_s)
        while True:
            best: tuple[int, str, int] | None = None
            for source, queue in enumerate(queues):
                if queue:
                    eff, _, sale, _ = queue[0]
                    key = (eff, sale.txn_id, source)
                    if best is None or key < best:
                        best = key
            if best is None:
                return
            eff, _, source = best
            waited_s = now - queues[source][0][1]
            waited, waited_unheard = waited_s >= grace_s, waited_s >= unheard
            if not (
                eff <= self.frontier  # late: nothing can go before it any more
                or all(
                    clocks[s] > eff or (idle[s] and (waited if heard[s] else waited_unheard))
                    for s, q in enumerate(queues)
                    if not q
                )
            ):
                return
            _, _, sale, token = queues[source].popleft()
            self._run(source, eff, sale, publish=True)
            self.cursor.newest = max(self.cursor.newest, eff)
            self._journal(Released(source, eff, sale))
            self.out.released.append(token)

    # -- recovery ---------------------------------------------------------------------------------

    def restore(self, entries: Iterable[tuple[int, bytes]], published: int) -> None:
        """Rebuild from journal entries in sequence order; alerts of entries from ``published``
        on may never have reached the alerts topic and are published again."""
        cursor = self.cursor
        for seq, data in entries:
            entry = _released_decoder.decode(data)
            source, sale = entry.source, entry.sale
            self._add_sources(source + 1)
            self._held[source] = max(self._held[source], (sale.seq, sale.index))
            self._last_eff[source] = max(self._last_eff[source], entry.eff)
            cursor.newest = max(cursor.newest, entry.eff)
            cursor.restored(seq, f"card partition {self.partition}")
            self._run(source, entry.eff, sale, publish=seq >= published)

    def take(self) -> StageOutput:
        out = self.out
        self.out = StageOutput()
        return out

    # -- internals --------------------------------------------------------------------------------

    def learn(self, version: LiveVersion) -> None:
        if self.schedule.add(version):
            self._switch_at = self.schedule.next_effective_us()

    def _switch(self, eff: int) -> None:
        for version in self.schedule.due(eff):
            cards = self.velocity.cards
            self.velocity = Velocity(version.config, self._outbox)
            self.velocity.cards = cards
            self._window_us = version.config.velocity.window_us
        self._switch_at = self.schedule.next_effective_us()

    def _run(self, source: int, eff: int, sale: Sale, publish: bool) -> None:
        if self._switch_at is not None and eff >= self._switch_at:
            self._switch(eff)
        self.frontier = max(self.frontier, eff)
        self.velocity.on_card_sale(sale.ts, sale.card_token, sale.merchant_id, sale.txn_id)
        if self.frontier >= self._next_sweep:
            self._next_sweep = self.frontier + SWEEP_EVERY_US
            self.velocity.expire(self.frontier - self._window_us)
        alerts = self._outbox.alerts
        if alerts:
            self._outbox.alerts = []
            if self.schedule.in_force:
                stamp(alerts, self.schedule.in_force)
            (self.out.alerts if publish else self.out.restored).extend(alerts)

    def _journal(self, entry: Released) -> None:
        self.out.write(self.cursor, _encoder.encode(entry))
