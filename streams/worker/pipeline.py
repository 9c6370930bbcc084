"""One input partition: decode, merge its topics on event time, journal, detect.

Pure and synchronous, so it is tested without a broker: the Faust driver offers raw messages,
asks for what is ready, and carries out the returned ``Output`` (publish alerts and dead letters,
write journal entries, acknowledge offsets).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

import msgspec

from models.scorer import Scorer
from streams.alerts import Alert
from streams.cardmask import mask_bytes, mask_text
from streams.config import Config
from streams.config_log import ConfigSchedule, LiveVersion, stamp
from streams.deadletter import MAX_RAW_BYTES, DeadLetter, make_dead_letter
from streams.decode import BadInputError, EventDecoder, contract_bytes
from streams.engine import snapshot as engine_snapshot
from streams.engine.core import Engine
from streams.engine.outbox import Rejection
from streams.engine.reconfigure import reconfigured
from streams.engine.txn_rules import RoutedRules
from streams.events import Event, EventKind
from streams.worker.cards import Sale
from streams.worker.journal import (
    CONFIG,
    FLUSH,
    JOURNAL_MARGIN_US,
    Entry,
    JournalCursor,
    JournaledOutput,
    encode_entry,
    entry_kind,
    entry_side,
)
from streams.worker.merge import SIDES, TRANSACTIONS, Grace, TimeMerger

_KINDS: Final[tuple[EventKind, ...]] = ("transaction", "settlement", "feedback", "payout")
# Journal entries are kept two days beyond the engine's retention, so a rebuilt engine has seen
# everything the live one still remembers.

_Pending = tuple[int, bytes, Event | BadInputError]


class _Buffered(msgspec.Struct, array_like=True):
    """A record the merge held, not journaled yet, as the journal would keep it (the snapshot
    table is as public as the journal): an event as its contract fields, with, for a
    transaction, the times the partition's clock gave it and the alerts its admission raised
    (the clock's state includes it); bad input masked, with why it was refused."""

    side: int
    offset: int
    raw: bytes
    ts: int = 0
    at: int = 0
    reports: list[Alert] = []
    reason: str | None = None
    detail: str = ""


class _Snapshot(msgspec.Struct, array_like=True):
    """A partition's state after the journal entries below ``cursor[0]``, with what the merge
    held then."""

    cursor: tuple[int, int, list[tuple[int, int]]]
    next_offset: list[int]
    buffered: list[_Buffered]
    engine: msgspec.Raw
    config_version: int = 0
    """The live configuration version the engine ran (0: the worker's own)."""


_snapshot_decoder = msgspec.json.Decoder(_Snapshot)


@dataclass(slots=True)
class Output(JournaledOutput):
    """What the driver must carry out for one partition (see ``JournaledOutput``)."""

    dead_letters: list[DeadLetter] = field(default_factory=list)
    done: list[tuple[int, int]] = field(default_factory=list)
    """``(side, offset)`` of inputs fully handled: safe to acknowledge."""
    sales: list[Sale] = field(default_factory=list)
    """Approved sales for the card stage (``streams/worker/cards.py``), once journaled."""


class PartitionPipeline:
    """Engine, merger and journal bookkeeping for one partition of the input topics
    (transactions, settlements, feedback, pay-outs: ``merge.SIDES``)."""

    def __init__(
        self,
        partition: int,
        config: Config,
        topics: tuple[str, ...],
        scorer: Scorer | None = None,
        versions: Iterable[LiveVersion] = (),
    ) -> None:
        self.partition = partition
        self.topics = topics
        self.engine = self._build(config, scorer)
        self.schedule = ConfigSchedule(versions)
        """Live configuration versions: the engine switches before the first event at or after
        each one's ``effective_at``, journaled (``CONFIG``) so a rebuild switches there too."""
        self._switch_at = self.schedule.next_effective_us()
        self.version = 0
        """The version the engine runs (0: ``config``)."""
        self.late_versions: list[int] = []
        """Versions learnt after this partition had passed their effective time."""
        check = config.card_numbers_in_ids
        self._decoders = tuple(EventDecoder(kind, check) for kind in _KINDS)
        self._merger: TimeMerger[_Pending] = TimeMerger()
        self.cursor = JournalCursor(config.retention_us + JOURNAL_MARGIN_US)
        self._next_offset = [0] * len(SIDES)
        """Per side, every offset below this one is journaled or buffered."""
        self._held: tuple[dict[int, bool], ...] = tuple({} for _ in SIDES)
        """Per side, offsets buffered by a snapshot this pipeline was loaded from, and whether
        Kafka delivered them again yet: acknowledged once both released and delivered again."""
        self.out = Output()

    @staticmethod
    def _build(config: Config, scorer: Scorer | None) -> Engine:
        engine = Engine(config, rules=lambda c, out: RoutedRules(c, out, scorer))
        # Features are always tracked, so a model loaded later judges with warm state.
        engine.patterns.track = True
        return engine

    def learn(self, version: LiveVersion) -> bool:
        """A configuration version from the topic; True when it was new. One whose effective
        time this partition already passed applies from its next event (and is reported)."""
        if not self.schedule.add(version):
            return False
        self._switch_at = self.schedule.next_effective_us()
        last = self.engine._last_run
        if version.version > self.version and last is not None and version.effective_us <= last:
            self.late_versions.append(version.version)
        return True

    # -- feeding ----------------------------------------------------------------------------------

    def offer(self, side: int, offset: int, raw: bytes, arrived: float = 0.0) -> None:
        """Buffer one message. A message the journal already holds is only acknowledged."""
        if offset < self._next_offset[side]:
            held = self._held[side]
            if held and offset in held:
                held[offset] = True  # acknowledged when released
            else:
                self.out.done.append((side, offset))
            return
        self._next_offset[side] = offset + 1
        try:
            event = self._decoders[side].decode(raw)
        except BadInputError as bad:
            self._merger.push(side, None, (offset, raw, bad), arrived)
            return
        if side == 0:  # in the topic's order, before the merge compares times
            self.engine.admit(event)  # type: ignore[arg-type]
        event.origin = (side, offset, raw)
        self._merger.push(side, event.at, (offset, raw, event), arrived)

    def release(self, caught_up: Callable[[int], bool], grace: Grace | None = None) -> None:
        """Feed the engine every buffered message whose place in event-time order is certain
        (see ``TimeMerger.pop_ready``)."""
        out = self.out
        for side, (offset, raw, item) in self._merger.pop_ready(caught_up, grace):
            # Held by a snapshot and not delivered again yet: acknowledged once it is.
            held = self._held[side]
            ack = not held or held.pop(offset, True)
            if isinstance(item, BadInputError):
                self._journal(side, offset, raw, item)
            else:
                if self._switch_at is not None and item.at >= self._switch_at:
                    self._switch_due(item.at)
                self._journal(side, offset, contract_bytes(item))
            self._apply(side, offset, raw, item, publish=True)
            if ack:
                out.done.append((side, offset))

    def held_back_by(self, since: float) -> tuple[int, ...]:
        """The input sides whose empty buffers hold back a record buffered since ``since``."""
        return self._merger.held_back_by(since)

    def flush_idle(self) -> bool:
        """Run the engine's open step when nothing is buffered (both inputs are idle).

        Journaled, so a rebuilt engine closes the step at the same point.
        """
        if len(self._merger) or not self.engine.has_open_step:
            return False
        self.out.write(self.cursor, encode_entry(Entry(FLUSH, -1, b"")))
        self.engine.flush()
        self._drain(publish=True)
        return True

    @property
    def seq(self) -> int:
        """Sequence number of the next journal entry."""
        return self.cursor.seq

    def next_offset(self, side: int) -> int:
        """Every offset of ``side`` below this one is journaled or buffered."""
        return self._next_offset[side]

    def buffered(self, side: int) -> int:
        return self._merger.buffered(side)

    def take(self) -> Output:
        """What to carry out since the last call. An empty ``Output`` is handed over and kept
        (most messages only wait in the merge buffer): read it at once, do not keep it."""
        out = self.out
        if (
            out.journal
            or out.done
            or out.alerts
            or out.dead_letters
            or out.restored
            or out.sales
            or out.trim_below is not None
        ):
            self.out = Output()
        return out

    # -- recovery ---------------------------------------------------------------------------------

    def snapshot(self) -> bytes | None:
        """The state after every journal entry so far (``seq`` of them) and the records the
        merge holds; None before anything was journaled."""
        if not self.cursor.seq:
            return None
        buffered: list[_Buffered] = []
        held = 0
        for side in SIDES:
            for offset, raw, item in self._merger.items(side):
                if isinstance(item, BadInputError):
                    kept = mask_bytes(raw)[:MAX_RAW_BYTES]
                    detail = mask_text(item.detail)
                    buffered.append(
                        _Buffered(side, offset, kept, reason=item.reason, detail=detail)
                    )
                elif side == TRANSACTIONS:
                    reports = self.engine.held_reports(item)  # type: ignore[arg-type]
                    held += bool(reports)
                    contract = contract_bytes(item)
                    buffered.append(_Buffered(side, offset, contract, item.ts, item.at, reports))
                else:
                    buffered.append(_Buffered(side, offset, contract_bytes(item)))
        engine = engine_snapshot.take(self.engine, held)
        state = _Snapshot(
            self.cursor.state(),
            list(self._next_offset),
            buffered,
            msgspec.Raw(engine),
            self.version,
        )
        return msgspec.json.encode(state)

    def load_snapshot(self, data: bytes) -> int:
        """Take over the state of a ``snapshot`` (this pipeline is fresh); the journal entries
        from the returned sequence number on are to be ``restore``d after it. Raises
        ``SnapshotRefusedError`` (the pipeline is then still fresh)."""
        try:
            state = _snapshot_decoder.decode(data)
        except msgspec.DecodeError as error:
            raise engine_snapshot.SnapshotRefusedError(
                f"the snapshot does not decode ({error})"
            ) from None
        if state.config_version:
            engine = self._build(self._known(state.config_version).config, self._scorer())
            engine_snapshot.load(engine, state.engine)
            self.engine = engine
            self._now_running(state.config_version)
        else:
            engine_snapshot.load(self.engine, state.engine)
        self.cursor.load_state(state.cursor)
        if len(state.next_offset) != len(SIDES):
            raise engine_snapshot.SnapshotRefusedError(
                f"the snapshot covers {len(state.next_offset)} input topics, not {len(SIDES)}"
            )
        self._next_offset = list(state.next_offset)
        for b in state.buffered:
            self._held[b.side][b.offset] = False
            try:
                if b.reason is not None:
                    raise BadInputError(b.reason, b.detail)  # type: ignore[arg-type]
                event = self._decoders[b.side].decode(b.raw)
            except BadInputError as bad:
                self._merger.push(b.side, None, (b.offset, b.raw, bad))
                continue
            if b.side == TRANSACTIONS:  # admitted before the snapshot: as the clock judged it
                event.ts, event.at = b.ts, b.at
                self.engine.hold_reports(event, b.reports)  # type: ignore[arg-type]
            event.origin = (b.side, b.offset, b.raw)
            self._merger.push(b.side, event.at, (b.offset, b.raw, event))
        return self.cursor.seq

    def restore(self, entries: Iterable[tuple[int, Entry]], published: int) -> None:
        """Rebuild from journal entries in sequence order.

        Alerts and dead letters produced by entries from ``published`` on may never have
        reached their topics: they are published again (same ids, same content).
        """
        for seq, entry in entries:
            self.cursor.restored(seq, f"partition {self.partition}")
            publish = seq >= published
            if entry.kind == FLUSH:
                self.engine.flush()
                self._drain(publish)
                continue
            if entry.kind == CONFIG:
                self._switch(self._known(entry.offset), publish)
                continue
            side = entry_side(entry.kind)
            item: Event | BadInputError
            if self._held[side] and entry.offset in self._held[side]:
                # Buffered when the snapshot loaded was taken, released after it: the record
                # the merge holds is this entry, admitted by the clock then.
                del self._held[side][entry.offset]
                offset, _, item = self._merger.pop_head(side)
                assert offset == entry.offset, f"partition {self.partition}: snapshot mismatch"
                self._apply(side, entry.offset, entry.raw, item, publish)
                continue
            self._next_offset[side] = entry.offset + 1
            if entry.reason is not None:
                item = BadInputError(entry.reason, entry.detail or "")  # type: ignore[arg-type]
            else:
                try:
                    item = self._decoders[side].decode(entry.raw)
                    item.origin = (side, entry.offset, entry.raw)
                    if side == 0:
                        self.engine.admit(item)  # type: ignore[arg-type]
                except BadInputError as bad:  # the id check was made stricter since then
                    item = bad
            self._apply(side, entry.offset, entry.raw, item, publish)

    # -- internals --------------------------------------------------------------------------------

    def _journal(
        self, side: int, offset: int, raw: bytes, bad: BadInputError | None = None
    ) -> None:
        # The changelog topic is as public as the alerts. An accepted event is journaled as its
        # contract fields (``contract_bytes``): ids exact, no field a card number could hide in.
        # Bad input keeps its raw text, masked, and the reason it was refused for.
        kind = entry_kind(side)
        if bad is None:
            entry = encode_entry(Entry(kind, offset, raw))
        else:
            detail = mask_text(bad.detail)
            kept = mask_bytes(raw)[:MAX_RAW_BYTES]
            entry = encode_entry(Entry(kind, offset, kept, bad.reason, detail))
        self.out.write(self.cursor, entry)

    def _apply(
        self, side: int, offset: int, raw: bytes, item: Event | BadInputError, publish: bool
    ) -> None:
        if isinstance(item, BadInputError):
            if publish:
                self.out.dead_letters.append(
                    make_dead_letter(
                        item.reason, item.detail, _KINDS[side], self._source(side, offset), raw
                    )
                )
            return
        self.cursor.newest = max(self.cursor.newest, item.at)
        self.engine.submit(item, True)
        self._drain(publish)

    def _switch_due(self, at: int) -> None:
        """Switch to every version due before an event at ``at``: journaled first, so the
        alerts and sales the old configuration's open step still makes belong to it."""
        for version in list(self.schedule.due(at)):
            if version.version > self.version:
                self.out.write(self.cursor, encode_entry(Entry(CONFIG, version.version, b"")))
                self._switch(version, publish=True)

    def _switch(self, version: LiveVersion, publish: bool) -> None:
        self.engine.flush()
        self._drain(publish)
        self.engine = reconfigured(self.engine, version.config, self._build)
        self._now_running(version.version)

    def _now_running(self, version: int) -> None:
        self.version = version
        self.schedule.set_in_force(version)
        self._switch_at = self.schedule.next_effective_us()

    def _known(self, version: int) -> LiveVersion:
        found = self.schedule.known.get(version)
        if found is None:
            raise engine_snapshot.SnapshotRefusedError(
                f"partition {self.partition} ran configuration version {version}, which the "
                "configuration topic does not hold"
            )
        return found

    def _scorer(self) -> Scorer | None:
        return self.engine.patterns.scorer

    def _drain(self, publish: bool) -> None:
        alerts, rejections = self.engine.take()
        out = self.out
        if alerts and self.version:
            stamp(alerts, self.version)
        if alerts:
            (out.alerts if publish else out.restored).extend(alerts)
        if rejections and publish:
            out.dead_letters.extend(self._rejected(r) for r in rejections)
        engine_out = self.engine.out
        if engine_out.sales:
            sales, engine_out.sales = engine_out.sales, []
            if publish:  # made by the entry just journaled (or restored)
                seq = self.cursor.seq - 1
                out.sales.extend(Sale.of(seq, i, t) for i, t in enumerate(sales))

    def _rejected(self, rejection: Rejection) -> DeadLetter:
        side, offset, raw = rejection.origin
        return make_dead_letter(
            rejection.reason, rejection.detail, _KINDS[side], self._source(side, offset), raw
        )

    def _source(self, side: int, offset: int) -> dict[str, str | int]:
        return {"topic": self.topics[side], "partition": self.partition, "offset": offset}
