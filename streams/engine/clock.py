"""The partition's transaction clock: event time that no single terminal or merchant can drag.

Terminal clocks are wrong in every real fleet (a battery-backed clock reset to a factory date, a
year typed wrong, local time sent as UTC). Flink's bounded out-of-orderness, Kafka Streams' stream
time and Dataflow's low watermark all take event times at face value once they arrive: one sale
stamped a year ahead moves stream time a year, and everything judged against it is then wrong.

Here the transaction watermark only moves on times the partition agrees on:

- A time within ``tolerance`` of the watermark *agrees*; the watermark is the latest agreeing
  time. A terminal off by less than the tolerance can lead it by at most its offset.
- A time further *behind* than the tolerance is a clock fault (or an upload so late that its
  deadlines have passed already): the terminal gets an offset, its times are moved onto the
  partition's, and a ``TERMINAL_CLOCK`` alert reports the offset.
- A time further *ahead* is a *claim*. Either the partition really moved on (the first sale of a
  morning after a quiet night, in a partition of few merchants) or the terminal's clock is
  ahead; only later arrivals can tell. The claim is corroborated when an independent source
  (another merchant; in a one-merchant partition another terminal) reports a time within the
  tolerance of it, or when the claimant's own times go on for a tolerance's worth with nobody
  disagreeing; it is refuted once ``_CONTRADICTIONS`` independent sources report times that
  agree with the watermark instead: then the terminal's clock is judged wrong and reported.
  While it is pending, the sale keeps its own time for its rules (``ts``: duplicate, velocity
  and terminal windows), so that a partition's true jump changes nothing, but the engine runs it
  at the watermark (``at``: steps, merge order, deadlines), so that a false one moves nothing.
- A terminal judged wrong keeps its offset, and its sales keep their spacing on the partition's
  time (both ``ts`` and ``at``), until its own times agree with the partition again: the alert
  resolves.

Before the partition has seen three terminals there is no majority to judge by: times are taken as
they come, and at the third terminal the watermark restarts from the median of what the three say.

The clock reads transactions in their topic's order, before they are merged with the settlements,
so that the merge itself orders a wrong-clock sale by the time it is given, not the time it claims.
The engine's time it gives is never ahead of the watermark: no step runs beyond the clock.

Everything is a function of the events in arrival order: no wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from streams.alerts import Alert
from streams.config import TerminalClockConfig
from streams.engine.outbox import Outbox
from streams.engine.records import ClockState
from streams.events import Transaction
from streams.timefmt import describe_duration, format_us

_QUORUM: Final = 3
"""Distinct terminals needed before any terminal's time is judged against the others."""
_CONTRADICTIONS: Final = 2
"""Independent sources that must disagree with a claim ahead before it is judged a fault."""


@dataclass(slots=True)
class _Terminal:
    """A terminal whose times are not taken at face value: a pending claim or an offset."""

    merchant_id: str
    terminal_id: str
    offset: int
    """Microseconds between its times and the partition's."""
    first_txn: str
    claim: int | None = None
    """While its claim ahead is pending: the time the claim started at."""
    latest: int = 0
    """While its claim is pending: its latest time."""
    contradicted_by: set[str] = field(default_factory=set)
    alert: Alert | None = None


class PartitionClock:
    """Gives each transaction, in its topic's order, its rule time and its engine time."""

    def __init__(self, config: TerminalClockConfig, out: Outbox) -> None:
        self.cfg = config
        self.tolerance = config.tolerance_us
        self.out = out
        self.watermark: int | None = None
        """The latest agreeing transaction time; None before the first."""
        self.reported = False
        """Set when an admission raised or resolved an alert (in ``out``)."""
        self._odd: dict[tuple[str, str], _Terminal] = {}
        self._claims: dict[tuple[str, str], _Terminal] = {}
        self._judging = False
        self._first_terminals: dict[tuple[str, str], int] = {}
        self._first_txns: dict[tuple[str, str], str] = {}
        self._first_merchant: str | None = None
        self._one_merchant = True

    def state(self) -> ClockState:
        odd = list(self._odd.values())
        position = {id(o): i for i, o in enumerate(odd)}
        return ClockState(
            self.watermark,
            [
                (
                    o.merchant_id,
                    o.terminal_id,
                    o.offset,
                    o.first_txn,
                    o.claim,
                    o.latest,
                    sorted(o.contradicted_by),
                    o.alert,
                )
                for o in odd
            ],
            [position[id(o)] for o in self._claims.values()],
            self._judging,
            [(m, t, ts) for (m, t), ts in self._first_terminals.items()],
            [(m, t, txn) for (m, t), txn in self._first_txns.items()],
            self._first_merchant,
            self._one_merchant,
        )

    def load_state(self, state: ClockState) -> None:
        """Take over ``state`` (a fresh clock of the same configuration)."""
        odd = [
            _Terminal(m, t, offset, first, claim, latest, set(contradicted), alert)
            for m, t, offset, first, claim, latest, contradicted, alert in state.odd
        ]
        self.watermark = state.watermark
        self._odd = {(o.merchant_id, o.terminal_id): o for o in odd}
        self._claims = {(o.merchant_id, o.terminal_id): o for o in (odd[i] for i in state.claims)}
        self._judging = state.judging
        self._first_terminals = {(m, t): ts for m, t, ts in state.first_terminals}
        self._first_txns = {(m, t): txn for m, t, txn in state.first_txns}
        self._first_merchant = state.first_merchant
        self._one_merchant = state.one_merchant

    def admit(self, t: Transaction, raw: int) -> None:
        """Set ``t.ts`` (``raw`` as decoded, moved onto the partition's time when its terminal's
        clock is judged wrong) and ``t.at`` (the engine's time, never ahead of the watermark;
        decoded equal to ``ts`` and only written when it differs)."""
        if self._one_merchant:
            self._saw_merchant(t.merchant_id)
        if not self._judging:
            at = self._bootstrap(t, raw)
            if at != raw:
                t.at = at
            return
        wm = self.watermark
        assert wm is not None
        tolerance = self.tolerance
        if self._odd:
            odd = self._odd.get((t.merchant_id, t.terminal_id))
            if odd is not None:
                self._admit_odd(odd, t, raw, wm)
                return
            if self._claims and self._check_claims(t, raw, wm):
                return
        if raw > wm + tolerance:
            self._claim(t, raw, wm)
        elif raw < wm - tolerance:
            self._behind(t, raw, wm)
        elif raw > wm:
            self.watermark = raw

    # -- bootstrap --------------------------------------------------------------------------------

    def _bootstrap(self, t: Transaction, raw: int) -> int:
        """Until ``_QUORUM`` terminals have been seen, times are taken as they come. Then the
        watermark restarts from the lower median of those terminals' latest times (a single
        early terminal with a wrong clock cannot set it), and a terminal among them that is
        ahead of it holds a pending claim."""
        key = (t.merchant_id, t.terminal_id)
        latest = self._first_terminals
        if key not in latest:
            self._first_txns[key] = t.txn_id
        if latest.get(key, raw - 1) < raw:
            latest[key] = raw
        wm = self.watermark
        if wm is None or raw > wm:
            self.watermark = raw
        if len(latest) < _QUORUM:
            return raw
        self._judging = True
        self._first_terminals = {}
        first_txns, self._first_txns = self._first_txns, {}
        times = sorted(latest.values())
        wm = self.watermark = times[(len(times) - 1) // 2]
        for (merchant_id, terminal_id), newest in latest.items():
            if newest > wm + self.tolerance:
                first = first_txns[(merchant_id, terminal_id)]
                odd = _Terminal(
                    merchant_id, terminal_id, newest - wm, first, claim=newest, latest=newest
                )
                self._odd[(merchant_id, terminal_id)] = odd
                self._claims[(merchant_id, terminal_id)] = odd
        if key in self._odd:
            return wm
        if wm - self.tolerance <= raw <= wm + self.tolerance:
            self.watermark = max(raw, wm)
        return raw

    # -- judgments --------------------------------------------------------------------------------

    def _saw_merchant(self, merchant_id: str) -> None:
        if self._first_merchant is None:
            self._first_merchant = merchant_id
        elif merchant_id != self._first_merchant:
            self._one_merchant = False

    def _independent(self, odd: _Terminal, t: Transaction) -> str | None:
        """The source ``t`` counts as against ``odd``'s claim: its merchant, or in a partition of
        one merchant its terminal; None when it is the same source."""
        if t.merchant_id != odd.merchant_id:
            return t.merchant_id
        if self._one_merchant and t.terminal_id != odd.terminal_id:
            return t.terminal_id
        return None

    def _check_claims(self, t: Transaction, raw: int, wm: int) -> bool:
        """Weigh the pending claims with ``t`` (from a terminal without one); True when ``t``
        corroborated one, so the partition moved on to its time."""
        tolerance = self.tolerance
        corroborated = False
        newest = raw
        for key, odd in list(self._claims.items()):
            source = self._independent(odd, t)
            if source is None:
                continue
            claimed = odd.latest
            if raw > wm + tolerance and abs(raw - claimed) <= tolerance:
                self._accept(key)
                corroborated = True
                newest = max(newest, claimed)
            elif wm - tolerance <= raw <= wm + tolerance:
                odd.contradicted_by.add(source)
                if len(odd.contradicted_by) >= _CONTRADICTIONS:
                    del self._claims[key]
                    odd.claim = None
                    self._report(odd, odd.offset)
        if corroborated and newest > wm:
            self.watermark = newest
        return corroborated

    def _accept(self, key: tuple[str, str]) -> None:
        del self._claims[key]
        del self._odd[key]

    def _claim(self, t: Transaction, raw: int, wm: int) -> None:
        odd = _Terminal(t.merchant_id, t.terminal_id, raw - wm, t.txn_id, claim=raw, latest=raw)
        key = (t.merchant_id, t.terminal_id)
        self._odd[key] = odd
        self._claims[key] = odd
        t.at = wm

    def _behind(self, t: Transaction, raw: int, wm: int) -> None:
        odd = _Terminal(t.merchant_id, t.terminal_id, raw - wm, t.txn_id)
        self._odd[(t.merchant_id, t.terminal_id)] = odd
        self._report(odd, raw - wm)
        t.ts = t.at = wm

    def _admit_odd(self, odd: _Terminal, t: Transaction, raw: int, wm: int) -> None:
        tolerance = self.tolerance
        key = (t.merchant_id, t.terminal_id)
        if wm - tolerance <= raw <= wm + tolerance:  # its own time agrees again
            del self._odd[key]
            self._claims.pop(key, None)
            if odd.alert is not None:
                self._recovered(odd, t, raw, wm)
            if raw > wm:
                self.watermark = raw
            return
        if odd.claim is not None:  # pending: its own time for its rules, the partition's here
            odd.latest = max(odd.latest, raw)
            if raw - odd.claim >= tolerance and not odd.contradicted_by:
                self._accept(key)  # it went on alone and nobody disagreed
                self.watermark = raw
                return
            t.at = min(raw - odd.offset, wm)
            return
        corrected = raw - odd.offset
        if not wm - tolerance <= corrected <= wm + tolerance:
            odd.offset = raw - wm  # drifted, or the partition moved on without it: again
            corrected = wm
        t.ts = corrected
        t.at = min(corrected, wm)

    # -- alerts -----------------------------------------------------------------------------------

    def _report(self, odd: _Terminal, offset: int) -> None:
        if not self.cfg.enabled or odd.alert is not None:
            return
        self.reported = True
        wm = self.watermark
        assert wm is not None
        direction = "ahead of" if offset > 0 else "behind"
        odd.alert = self.out.open(
            "TERMINAL_CLOCK",
            self.cfg,
            (odd.merchant_id, odd.terminal_id, odd.first_txn),
            merchant_id=odd.merchant_id,
            terminal_id=odd.terminal_id,
            txn_ids=[odd.first_txn],
            settlement_ids=[],
            ts=wm,
            summary=(
                f"Terminal {odd.terminal_id} at merchant {odd.merchant_id} stamps its "
                f"transactions {describe_duration(abs(offset))} {direction} the rest of the "
                "fleet: set its clock. Until then its sales are reconciled on the fleet's time, "
                "and its times move no deadline or watermark."
            ),
            details={
                "offset_seconds": offset // 1_000_000,
                "tolerance_seconds": self.tolerance // 1_000_000,
                "partition_time": format_us(wm),
                "terminal_time": format_us(wm + offset),
            },
        )

    def _recovered(self, odd: _Terminal, t: Transaction, raw: int, wm: int) -> None:
        assert odd.alert is not None
        self.reported = True
        odd.alert = self.out.resolve(
            odd.alert,
            wm,
            f"Terminal {odd.terminal_id}'s clock agrees with the fleet again "
            f"(transaction {t.txn_id} at {format_us(raw)}).",
            agreed_at=format_us(raw),
            agreeing_txn_id=t.txn_id,
        )
