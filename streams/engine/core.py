"""The detection engine: events in, alert events out, in event-time order.

Pure and synchronous: no Kafka, no Faust, no wall clock. Both drivers (file replay and the stream
worker) feed it the same way, so replay reproduces what the stream decided.

Events are processed in *steps*: all events with the same engine time (``at``: the event
time, unless the partition's clock holds it back, ``streams/engine/clock.py``) form one step. A
step is run when an event with a later time arrives (or on ``flush``); inside it, events are put in
a canonical order (sales, then other transactions, then settlement lines; by id), applied, and only
then are the watermarks advanced and watermark rules judged. So the order of events with equal
timestamps never changes the outcome, and a settlement batch stamped with one ``settled_at`` is
matched as a whole before anything is declared missing. An event older than the open step is
processed at once as a step of its own; watermarks never move backwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from models.scorer import Scorer
from streams.alerts import Alert
from streams.config import Config
from streams.engine.clock import PartitionClock
from streams.engine.expiry import Expiry, retained_at
from streams.engine.feed import FeedMonitor
from streams.engine.offload import Offload
from streams.engine.order import canonical_order, same_content
from streams.engine.outbox import Outbox, Rejection
from streams.engine.outcomes import Outcomes
from streams.engine.patterns import SuspiciousPatterns
from streams.engine.reconcile import Reconciliation
from streams.engine.refunds import Refunds
from streams.engine.state import SWEEP_EVERY_US, MerchantState, TxnState, awaits_settlement
from streams.engine.txn_rules import LocalRules
from streams.events import (
    CANCELLING_TYPES,
    SETTLING_TYPES,
    Event,
    Feedback,
    Payout,
    Settlement,
    Transaction,
)
from streams.rules.registry import RULES
from streams.rules.spec import Rule

# Short-lived state (card, amount and terminal windows) is pruned by time wherever it is read;
# the sweeps only keep memory bounded. The minute windows are swept hourly: small dicts take new
# keys (nearly every sale is a new card-and-amount key) at half the cost of day-sized ones. The
# model's per-card history (30 days) is swept daily.
_FEATURE_SWEEP_EVERY_US = 24 * 3600_000_000


@dataclass(slots=True)
class EngineStats:
    transactions: int = 0
    settlements: int = 0
    redeliveries: int = 0
    payouts: int = 0


class Engine:
    """Detection over one ordered stream of transactions and settlement lines."""

    def __init__(
        self,
        config: Config | None = None,
        scorer: Scorer | None = None,
        rules: Callable[[Config, Outbox], Offload] | None = None,
    ) -> None:
        """``rules`` builds what consumes the ledger's derived stream (``offload.py``): the
        transaction-only rules and the model. By default they run here (``LocalRules``, with
        ``scorer``); a driver that runs them elsewhere says so by giving its own."""
        self.config = config or Config()
        self.out = Outbox()
        if rules is None:
            self.offload: Offload = LocalRules(self.config, self.out, scorer)
        else:
            if scorer is not None:
                raise ValueError("give the scorer to the rules that run the model")
            self.offload = rules(self.config, self.out)
        self.stats = EngineStats()
        self.merchants: dict[str, MerchantState] = {}
        self.feed = FeedMonitor(self.config, self.out)
        self.times = PartitionClock(self.config.terminal_clock, Outbox())
        self._reports: dict[int, list[Alert]] = {}
        """The clock's alerts, by the transaction whose admission raised them: emitted when it
        is submitted, so they take the same place in every driver's output."""
        self.reconcile = Reconciliation(self.config, self.out, self.merchants)
        self.refunds = Refunds(self.config, self.out)
        self.outcomes = Outcomes(self.merchants, self.offload, self.out)
        self.rules: list[Rule] = _rules_outside_the_ledger(self.config, self.out)
        for rule in self.rules:
            rule.read_ledger(self.merchants)
        self.payouts: dict[tuple[str, str], Payout] = {}
        """Accepted pay-outs by merchant and ``payout_id`` (redeliveries are recognised), kept
        for the retention."""
        self._step: list[Event] = []
        self._step_ts: int | None = None
        self._last_run: int | None = None
        self._expiry = Expiry()
        self._next_sweep: int | None = None
        self._next_feature_sweep: int | None = None

    @property
    def patterns(self) -> SuspiciousPatterns:
        """The model, when it runs in this process."""
        patterns = self.offload.patterns
        if patterns is None:
            raise RuntimeError("this engine's model runs in another process")
        return patterns

    # -- driver interface -----------------------------------------------------------------------

    def admit(self, t: Transaction) -> None:
        """Give a transaction the partition clock's verdict (``streams/engine/clock.py``): the
        time its rules measure with (``ts``: its own, unless its terminal's clock is judged
        wrong) and the engine's time for it (``at``). Drivers call this as they read each
        transaction, in its topic's order and before merging it with the settlements on ``at``;
        ``submit`` does it for a transaction not admitted that way."""
        raw = t.ts
        times = self.times
        times.admit(t, raw)
        if times.reported:
            times.reported = False
            self._reports[id(t)] = times.out.alerts
            times.out.alerts = []
        if t.ts != raw:
            self.offload.retime(t)

    def held_reports(self, t: Transaction) -> list[Alert]:
        """The clock's alerts about ``t``, admitted and not submitted yet (for a snapshot)."""
        return self._reports.get(id(t), [])

    def hold_reports(self, t: Transaction, alerts: list[Alert]) -> None:
        """Give ``t`` (admitted before a snapshot) back the alerts its admission raised."""
        if alerts:
            self._reports[id(t)] = alerts

    def submit(self, event: Event, admitted: bool = False) -> None:
        """Accept one decoded event (``event.ts`` set; ``admitted``: a transaction has been through
        ``admit``). Results accumulate in ``self.out``."""
        if not admitted and type(event) is Transaction:
            self.admit(event)
        if self._reports:
            reports = self._reports.pop(id(event), None)
            if reports is not None:
                self.out.alerts.extend(reports)
        ts = event.at
        if self._step_ts is None or ts == self._step_ts:
            self._step_ts = ts
            self._step.append(event)
        elif ts > self._step_ts:
            self._run_pending()
            self._step_ts = ts
            self._step.append(event)
        else:
            self._run_step([event], ts)

    def flush(self) -> None:
        """Run the open step (end of input, or the driver knows no more events share its time)."""
        if self._step:
            self._run_pending()

    @property
    def clock(self) -> int | None:
        """Every event still to come that is not late has at least this time (the open step's
        time, else one past the last step run); None before any event."""
        if self._step_ts is not None:
            return self._step_ts
        return None if self._last_run is None else self._last_run + 1

    @property
    def has_open_step(self) -> bool:
        """Events are waiting for a later time (or ``flush``) to be processed."""
        return bool(self._step)

    def take(self) -> tuple[list[Alert], list[Rejection]]:
        """Hand over (and forget) the alert events and rejections produced so far."""
        out = self.out
        alerts, rejections = out.alerts, out.rejections
        if alerts or rejections:
            out.alerts, out.rejections = [], []
        return alerts, rejections

    # -- steps ----------------------------------------------------------------------------------

    def _run_pending(self) -> None:
        events, ts = self._step, self._step_ts
        self._step, self._step_ts = [], None
        assert ts is not None
        self._run_step(events, ts)

    def _run_step(self, events: list[Event], ts: int) -> None:
        if self._last_run is None or ts > self._last_run:
            self._last_run = ts
        if len(events) > 1:
            events = canonical_order(events)
        saw_txn = saw_line = saw_payout = False
        last_line = ""
        for event in events:
            if type(event) is Transaction:
                saw_txn |= self._on_transaction(event)
            elif type(event) is Settlement:
                if self._on_settlement(event):
                    saw_line = True
                    last_line = event.settlement_id
            elif type(event) is Feedback:
                self.outcomes.on_feedback(event)
            else:
                saw_payout |= self._on_payout(event)  # type: ignore[arg-type]
            event.origin = None
        if not (saw_txn or saw_line):
            if saw_payout:
                for rule in self.rules:
                    rule.on_step_end(ts)
            return
        feed = self.feed
        if saw_txn:
            feed.saw_transactions(ts)
        if saw_line:
            feed.saw_settlements(ts, last_line)
        feed.check(ts)
        reconcile = self.reconcile
        sw = feed.settlement_max
        if saw_line and sw is not None and reconcile.missing_due(sw):  # noqa: SIM102
            if feed.missing_judgments_allowed():
                reconcile.judge_missing(sw, ts)
        if saw_txn:
            tw = feed.transaction_wm
            assert tw is not None
            if reconcile.unmatched_due(tw):
                reconcile.judge_unmatched(tw, ts)
            horizon = tw - self.config.retention_us
            if retained_at(self._expiry.entries[0]) < horizon:
                self._expiry.drop_before(horizon, self.merchants)
            if self._next_sweep is None or tw >= self._next_sweep:
                self._next_sweep = tw + SWEEP_EVERY_US
                self._sweep_short_lived(tw)
            for rule in self.rules:
                rule.on_watermark(tw)
        for rule in self.rules:
            rule.on_step_end(ts)

    # -- transactions ---------------------------------------------------------------------------

    def _on_transaction(self, t: Transaction) -> bool:
        # Fields read once into locals: each read of an event's field is a lookup by name.
        merchant_id = t.merchant_id
        txn_id = t.txn_id
        ms = self.merchants.get(merchant_id)
        if ms is None:
            ms = self.merchants[merchant_id] = MerchantState()
        known = ms.txns.get(txn_id)
        if known is not None:
            self._redelivered(known.txn, t)
            return False
        self.stats.transactions += 1
        st = ms.txns[txn_id] = TxnState(t)
        approved = t.status == "APPROVED"
        kind = t.type
        if approved and kind in SETTLING_TYPES:  # awaits settlement, new
            ms.count_unsettled(t, 1)
        self._expiry.entries.append(st)
        offload = self.offload
        offload.attempt(t)
        uncancelled = True
        waiting = ms.pending_cancels.pop(txn_id, None)
        if waiting is not None:
            self._cancel(ms, st, waiting, arriving=True)
            uncancelled = st.cancelled_by is None
        if approved:
            if kind == "SALE":
                if uncancelled:
                    offload.sale(t)
                offload.card_sale(t)
            elif kind == "REFUND":
                if uncancelled:
                    self.refunds.on_refund(ms, st)
            elif t.original_txn_id is not None:  # VOID / REVERSAL
                original = ms.txns.get(t.original_txn_id)
                if original is None:
                    ms.pending_cancels.setdefault(t.original_txn_id, t)
                else:
                    self._cancel(ms, original, t, arriving=False)
        # expects_settlement(st), known here without reading st again
        expects = approved and uncancelled and kind in SETTLING_TYPES
        self.reconcile.on_transaction(ms, st, t, expects)
        offload.on_transaction(t)
        if self.outcomes.waiting:
            self.outcomes.sale_seen(t)
        for rule in self.rules:
            rule.on_transaction(ms, st)
        return True

    def _cancel(self, ms: MerchantState, st: TxnState, by: Transaction, arriving: bool) -> None:
        """An approved VOID/REVERSAL cancels an approved SALE or REFUND (anything else: no-op).

        ``arriving``: ``st`` is the transaction being accepted (its VOID came first), otherwise
        ``by`` is."""
        target = st.txn
        if (
            st.cancelled_by is not None
            or target.status != "APPROVED"
            or target.type in CANCELLING_TYPES
        ):
            return
        if awaits_settlement(st):
            ms.count_unsettled(target, -1)
        st.cancelled_by = by.txn_id
        ts = max(by.ts, target.ts)
        if not arriving:  # a transaction being accepted is in no duplicate cluster yet
            self.offload.cancel(by)
        self.refunds.on_cancel(ms, st, ts)
        self.reconcile.on_cancel(ms, st, ts)
        if not arriving:  # one being accepted reaches the rules cancelled already
            for rule in self.rules:
                rule.on_cancel(ms, st, ts)

    # -- settlements ----------------------------------------------------------------------------

    def _on_settlement(self, line: Settlement) -> bool:
        merchant_id = line.merchant_id
        settlement_id = line.settlement_id
        ms = self.merchants.get(merchant_id)
        if ms is None:
            ms = self.merchants[merchant_id] = MerchantState()
        known = ms.settlements.get(settlement_id)
        if known is not None:
            self._redelivered(known, line)
            return False
        self.stats.settlements += 1
        ms.settlements[settlement_id] = line
        self._expiry.entries.append(line)
        self.reconcile.on_settlement(ms, line)
        for rule in self.rules:
            rule.on_settlement(ms, line)
        return True

    # -- pay-outs ------------------------------------------------------------------------------

    def _on_payout(self, payout: Payout) -> bool:
        key = (payout.merchant_id, payout.payout_id)
        known = self.payouts.get(key)
        if known is not None:
            self._redelivered(known, payout)
            return False
        self.stats.payouts += 1
        self.payouts[key] = payout
        ms = self.merchants.get(payout.merchant_id)
        if ms is None:
            ms = self.merchants[payout.merchant_id] = MerchantState()
        for rule in self.rules:
            rule.on_payout(ms, payout)
        return True

    def _redelivered(self, known: Event, again: Event) -> None:
        if same_content(known, again):
            self.stats.redeliveries += 1
            return
        if isinstance(again, Transaction):
            what, ident = "txn_id", again.txn_id
        elif isinstance(again, Settlement):
            what, ident = "settlement_id", again.settlement_id
        else:
            what, ident = "payout_id", again.payout_id  # type: ignore[union-attr]
        self.out.reject(
            again,
            "CONFLICT",
            f"{what} {ident} was already seen with different content; the first version is kept",
        )

    # -- bounded state --------------------------------------------------------------------------

    def _sweep_short_lived(self, tw: int) -> None:
        for rule in self.rules:
            rule.expire(tw)
        if self.payouts:
            horizon = tw - self.config.retention_us
            self.payouts = {k: p for k, p in self.payouts.items() if p.ts >= horizon}
        self.outcomes.expire(tw - self.config.retention_us)
        self.offload.sweep(tw)
        if self._next_feature_sweep is None or tw >= self._next_feature_sweep:
            self._next_feature_sweep = tw + _FEATURE_SWEEP_EVERY_US
            self.offload.expire(tw)


def _rules_outside_the_ledger(config: Config, out: Outbox) -> list[Rule]:
    """The registry's rules with handlers of their own (``RuleSpec.make``) that are enabled."""
    rules: list[Rule] = []
    for spec in RULES:
        if spec.make is not None:
            settings = config.rule(spec.section, spec.config)
            if settings.enabled:
                rules.append(spec.make(settings, out))
    return rules
