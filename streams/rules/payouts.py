"""Pay-outs: did the settled money reach the merchant's bank account?

The acquirer pays one net credit per settlement batch or day (N lines : 1 credit, often N batches :
1 credit). Each settlement batch (``payout_match.Batch``) waits for the pay-out that pays it;
each pay-out is matched to its batches (by ``batch_ids``, else by amount: ``payout_match``).

- ``PAYOUT_MISSING``: a batch is still unpaid once the pay-out watermark (the latest
  ``value_date`` seen) passes its ``settled_at`` + ``missing_after``; resolved by the pay-out.
- ``PAYOUT_MISMATCH``: a pay-out differs from the net of the batches it pays; the details name
  what explains the difference.
- ``UNEXPLAINED_CREDIT``: a credit that pays no batch once the settlement watermark passes its
  value date + ``unexplained_after``; resolved when a batch it pays arrives.

Judged on the feeds' own watermarks, never the clock, with the care the settlement feed gets: while
the pay-out feed is more than ``feed_gap`` behind the settlements, and until its watermark is
``hold_after_close`` past the point where it caught up, missing pay-outs are not judged. Each
merchant's statements are a feed of their own too: a merchant whose latest pay-out lags the
others' by more than ``missing_after`` has a late statement, and its batches wait for it. A late
statement is one stalled feed (a metric, and its page), not one alert per batch.

A debit that reverses an earlier credit (same amount, same merchant and currency) takes that
credit's batches back to unpaid; other debits that pay no batch (bank charges) raise nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from streams.rules import payout_texts as texts
from streams.rules.payout_config import DAY, KEYS, PayoutConfig, Severe
from streams.rules.payout_explain import batch_lines
from streams.rules.payout_feed import FeedState, PayoutFeed
from streams.rules.payout_match import (
    Batch,
    Paid,
    as_row,
    batch_name,
    exact_match,
    nearest_match,
)
from streams.rules.spec import AlertKind, Rule, RuleSpec
from streams.timefmt import format_us

if TYPE_CHECKING:  # the registry is read by the engine: its rules import no engine module
    from streams.alerts import Alert
    from streams.engine.outbox import Outbox
    from streams.engine.state import MerchantState
    from streams.events import Payout, Settlement

_MAX_EVIDENCE: Final = 500
"""Settlement lines named by one alert at most (``details.line_count`` counts them all)."""


_BatchKey = tuple[str, str, str]


class Payouts(Rule):
    def __init__(self, config: PayoutConfig, out: Outbox) -> None:
        self.cfg = config
        self.out = out
        self.batches: dict[_BatchKey, Batch] = {}
        self.unpaid: dict[tuple[str, str], dict[str, Batch]] = {}
        """Unpaid batches by merchant and currency, then name."""
        self.payouts: dict[tuple[str, str], Paid] = {}
        self.waiting: dict[str, dict[str, Paid]] = {}
        """PENDING and UNEXPLAINED pay-outs by merchant, then ``payout_id``."""
        self.feed = PayoutFeed(config)
        # Step-local: what the step's events touched.
        self._touched: dict[str, MerchantState] = {}
        self._moved = [False, False]  # settlement, pay-out watermark
        self.ledger: Mapping[str, MerchantState] = {}

    def read_ledger(self, merchants: Mapping[str, MerchantState]) -> None:
        self.ledger = merchants

    # -- events ---------------------------------------------------------------------------------

    def on_settlement(self, ms: MerchantState, line: Settlement) -> None:
        if line.status != "SETTLED":
            return
        ts = line.ts
        if self.feed.saw_line(ts):
            self._moved[0] = True
        name = batch_name(line.batch_id, ts)
        key = (line.merchant_id, line.currency, name)
        batch = self.batches.get(key)
        if batch is None:
            batch = Batch(line.merchant_id, line.currency, name, line.batch_id is None)
            self.batches[key] = batch
        batch.net += line.net_minor
        batch.settled_us = max(batch.settled_us, ts)
        batch.count += 1
        if batch.paid_by is None:
            self.unpaid.setdefault((line.merchant_id, line.currency), {})[name] = batch
            self._touched[line.merchant_id] = ms

    def on_payout(self, ms: MerchantState, payout: Payout) -> None:
        ts = payout.ts
        if self.feed.saw_payout(payout.merchant_id, ts):
            self._moved[1] = True
        paid = Paid(
            payout.payout_id,
            payout.merchant_id,
            payout.currency,
            payout.amount_minor,
            ts,
            payout.batch_ids or None,  # an empty list names no batch: matched by amount
        )
        self.payouts[(paid.merchant_id, paid.payout_id)] = paid
        if paid.amount < 0 and self._reverses(paid, ts):
            return
        self.waiting.setdefault(paid.merchant_id, {})[paid.payout_id] = paid
        self._touched[paid.merchant_id] = ms

    def on_step_end(self, ts: int) -> None:
        if self._touched:
            touched, self._touched = self._touched, {}
            for merchant_id, ms in sorted(touched.items()):
                self._match(merchant_id, ms, ts)
        settlements_moved, payouts_moved = self._moved
        if not (settlements_moved or payouts_moved):
            return
        self._moved = [False, False]
        self.feed.follow()
        if payouts_moved and self.feed.judging_missing():
            self._judge_missing(ts)
        if settlements_moved:
            self._judge_unexplained(ts)

    def unpaid_totals(self) -> dict[str, dict[str, int]]:
        """Per merchant, per currency: the net of batches settled and not paid yet."""
        out: dict[str, dict[str, int]] = {}
        for (merchant_id, currency), batches in self.unpaid.items():
            total = sum(b.net for b in batches.values())
            if batches:
                out.setdefault(merchant_id, {})[currency] = total
        return out

    # -- matching -------------------------------------------------------------------------------

    def _match(self, merchant_id: str, ms: MerchantState, ts: int) -> None:
        waiting = self.waiting.get(merchant_id)
        if not waiting:
            return
        order = sorted(waiting.values(), key=lambda p: (p.value_us, p.payout_id))
        for paid in order:
            if paid.batch_ids is not None:
                keys = [(merchant_id, paid.currency, b) for b in paid.batch_ids]
                if all(k in self.batches for k in keys):
                    self._settle(paid, [self.batches[k] for k in keys], [], ts)
        unnamed = [p for p in order if p.batch_ids is None and p.payout_id in waiting]
        for paid in unnamed:
            found = exact_match(paid.amount, self._candidates(paid), self.cfg.tolerance_minor)
            if found is not None:
                self._settle(paid, found, [], ts)
        for paid in unnamed:
            if paid.payout_id in waiting and paid.state == "PENDING":
                near = nearest_match(paid.amount, self._candidates(paid), self.cfg.near_share)
                if near is not None:
                    self._settle(paid, near, [], ts)

    def _candidates(self, paid: Paid) -> list[Batch]:
        """Unpaid batches a pay-out without ``batch_ids`` may pay, oldest first."""
        batches = self.unpaid.get((paid.merchant_id, paid.currency), {})
        low, high = paid.value_us - self.cfg.match_window_us, paid.value_us + DAY
        found = [b for b in batches.values() if low <= b.settled_us <= high]
        found.sort(key=lambda b: (b.settled_us, b.name))
        return found

    def _settle(
        self,
        paid: Paid,
        batches: list[Batch],
        unknown: list[str],
        ts: int,
    ) -> None:
        """``paid`` pays ``batches`` (and names ``unknown`` batches the feed never had)."""
        del self.waiting[paid.merchant_id][paid.payout_id]
        paid.state = "MATCHED"
        paid.batches = [b.name for b in batches]
        fresh = [b for b in batches if b.paid_by is None]
        twice = [b for b in batches if b.paid_by is not None]
        for batch in fresh:
            batch.paid_by = paid.payout_id
            self.unpaid.get((batch.merchant_id, batch.currency), {}).pop(batch.name, None)
            if batch.missing is not None and batch.missing.status == "OPEN":
                batch.missing = self.out.resolve(
                    batch.missing,
                    ts,
                    f"Batch {batch.label} of merchant {batch.merchant_id} was paid by pay-out "
                    f"{paid.payout_id} (value date {format_us(paid.value_us)}).",
                    paid_by=paid.payout_id,
                    payout_ids=[paid.payout_id],
                )
        if paid.alert is not None and paid.alert.status == "OPEN":
            paid.alert = self.out.resolve(
                paid.alert,
                ts,
                f"Pay-out {paid.payout_id} is explained: it pays "
                f"{', '.join(b.label for b in batches)}.",
                batch_ids=[b.name for b in batches],
            )
        due = sum(b.net for b in fresh)
        difference = paid.amount - due
        if abs(difference) > self.cfg.tolerance_minor or twice or unknown:
            self._mismatch(paid, fresh, twice, unknown, difference, ts)

    def _mismatch(
        self,
        paid: Paid,
        fresh: list[Batch],
        twice: list[Batch],
        unknown: list[str],
        difference: int,
        ts: int,
    ) -> None:
        ms = self.ledger.get(paid.merchant_id)
        lines = [line for b in fresh for line in batch_lines(ms, b)]
        summary, details, evidence = texts.mismatch(
            paid, fresh, twice, unknown, difference, lines, self.cfg.tolerance_minor
        )
        self.out.open(
            "PAYOUT_MISMATCH",
            self.cfg,
            (paid.merchant_id, paid.payout_id),
            merchant_id=paid.merchant_id,
            terminal_id=None,
            txn_ids=[],
            settlement_ids=evidence[:_MAX_EVIDENCE],
            ts=ts,
            summary=summary,
            details=details,
        )

    def _reverses(self, debit: Paid, ts: int) -> bool:
        """A debit that takes back an earlier credit of the same amount: that credit's batches
        are unpaid again, its open alert resolved."""
        credits = [
            p
            for p in self.payouts.values()
            if p.merchant_id == debit.merchant_id
            and p.currency == debit.currency
            and p.amount == -debit.amount
            and p.state in ("MATCHED", "PENDING", "UNEXPLAINED")
            and p.value_us <= debit.value_us
            and (debit.batch_ids is None or p.batch_ids == debit.batch_ids)
        ]
        if not credits:
            return False
        credit = max(credits, key=lambda p: (p.value_us, p.payout_id))
        self.waiting.get(credit.merchant_id, {}).pop(credit.payout_id, None)
        credit.state = debit.state = "REVERSED"
        for name in credit.batches:
            batch = self.batches.get((credit.merchant_id, credit.currency, name))
            if batch is not None and batch.paid_by == credit.payout_id:
                batch.paid_by = None
                self.unpaid.setdefault((batch.merchant_id, batch.currency), {})[name] = batch
        if credit.alert is not None and credit.alert.status == "OPEN":
            credit.alert = self.out.resolve(
                credit.alert,
                ts,
                f"Credit {credit.payout_id} was reversed by {debit.payout_id}.",
                reversed_by=debit.payout_id,
            )
        return True

    # -- judgments ------------------------------------------------------------------------------

    def _judge_missing(self, ts: int) -> None:
        pw = self.feed.payout_wm
        assert pw is not None
        due = pw - self.cfg.missing_after_us
        late = [
            b
            for batches in self.unpaid.values()
            for b in batches.values()
            if b.settled_us < due
            and b.net > 0  # nothing is owed to the merchant for a batch netting zero or less
            and (b.missing is None or b.missing.status != "OPEN")
            and self.feed.statements_current(b.merchant_id)
        ]
        late.sort(key=lambda b: (b.settled_us, b.merchant_id, b.currency, b.name))
        for batch in late:
            summary, details = texts.missing(batch, pw, self.cfg.missing_after_us)
            lines = batch_lines(self.ledger.get(batch.merchant_id), batch)
            ids = [line.settlement_id for line in lines[:_MAX_EVIDENCE]]
            if batch.missing is not None:  # paid, then the pay-out was reversed
                batch.missing = self.out.update(
                    batch.missing, ts, status="OPEN", summary=summary, details=details
                )
                continue
            batch.missing = self.out.open(
                "PAYOUT_MISSING",
                self.cfg,
                (batch.merchant_id, batch.currency, batch.name),
                merchant_id=batch.merchant_id,
                terminal_id=None,
                txn_ids=[],
                settlement_ids=ids,
                ts=ts,
                summary=summary,
                details=details,
            )

    def _judge_unexplained(self, ts: int) -> None:
        sw = self.feed.settlement_wm
        assert sw is not None
        due = sw - self.cfg.unexplained_after_us
        for merchant_id in sorted(self.waiting):
            for paid in sorted(self.waiting[merchant_id].values(), key=lambda p: p.payout_id):
                if paid.state != "PENDING" or paid.value_us >= due:
                    continue
                if paid.batch_ids is not None:
                    keys = [(merchant_id, paid.currency, b) for b in paid.batch_ids]
                    known = [self.batches[k] for k in keys if k in self.batches]
                    if known:
                        unknown = [k[2] for k in keys if k not in self.batches]
                        self._settle(paid, known, unknown, ts)
                        continue
                if paid.amount <= 0:
                    paid.state = "DEBIT"
                    del self.waiting[merchant_id][paid.payout_id]
                    continue
                paid.state = "UNEXPLAINED"
                paid.alert = self._unexplained(paid, sw, ts)

    def _unexplained(self, paid: Paid, sw: int, ts: int) -> Alert:
        summary, details = texts.unexplained(paid, sw)
        return self.out.open(
            "UNEXPLAINED_CREDIT",
            Severe(self.cfg.unexplained_severity),
            (paid.merchant_id, paid.payout_id),
            merchant_id=paid.merchant_id,
            terminal_id=None,
            txn_ids=[],
            settlement_ids=[],
            ts=ts,
            summary=summary,
            details=details,
        )

    # -- state ----------------------------------------------------------------------------------

    def expire(self, tw: int) -> None:
        horizon = tw - self.cfg.keep_us
        old = [k for k, b in self.batches.items() if b.settled_us < horizon]
        for key in old:
            batch = self.batches.pop(key)
            unpaid = self.unpaid.get((batch.merchant_id, batch.currency))
            if unpaid is not None:
                unpaid.pop(batch.name, None)
                if not unpaid:
                    del self.unpaid[(batch.merchant_id, batch.currency)]
        self.feed.forget_before(horizon)
        gone = [k for k, p in self.payouts.items() if p.value_us < horizon]
        for payout_key in gone:
            paid = self.payouts.pop(payout_key)
            self.waiting.get(paid.merchant_id, {}).pop(paid.payout_id, None)

    @classmethod
    def state_type(cls) -> Any:
        from streams.alerts import Alert  # noqa: PLC0415 (alerts import the registry)

        batch = tuple[str, str, str, bool, int, int, int, str | None, Alert | None]
        paid = tuple[str, str, str, int, int, list[str] | None, str, list[str], Alert | None]
        return tuple[list[batch], list[paid], FeedState]

    def state(self) -> Any:
        return (
            [as_row(b) for b in self.batches.values()],
            [as_row(p) for p in self.payouts.values()],
            self.feed.state(),
        )

    def load_state(self, state: Any) -> None:
        batches, payouts, feed = state
        self.feed.load_state(feed)
        for row in batches:
            batch = Batch(*row)
            self.batches[(batch.merchant_id, batch.currency, batch.name)] = batch
            if batch.paid_by is None:
                self.unpaid.setdefault((batch.merchant_id, batch.currency), {})[batch.name] = batch
        for row in payouts:
            paid = Paid(*row)
            self.payouts[(paid.merchant_id, paid.payout_id)] = paid
            if paid.state in ("PENDING", "UNEXPLAINED"):
                self.waiting.setdefault(paid.merchant_id, {})[paid.payout_id] = paid


SPEC: RuleSpec = RuleSpec(
    "payouts",
    "A settlement batch unpaid `missing_after` past its settlement on the pay-out feed's "
    "watermark; a pay-out that differs from its batches' net; a credit paying no batch "
    "`unexplained_after` past its value date on the settlement watermark.",
    PayoutConfig,
    (
        AlertKind("PAYOUT_MISSING", "PO", "Pay-out missing", texts.missing_stake),
        AlertKind("PAYOUT_MISMATCH", "PX", "Pay-out mismatch", texts.mismatch_stake),
        AlertKind(
            "UNEXPLAINED_CREDIT",
            "UC",
            "Unexplained credit",
            texts.credit_stake,
            severity_field="unexplained_severity",
        ),
    ),
    KEYS,
    make=Payouts,
)
