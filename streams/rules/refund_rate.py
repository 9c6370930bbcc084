"""REFUND_RATE: a merchant refunding too large a share of its sales within a window.

A burst of refunds is how a compromised terminal or a dishonest employee moves money out of a
merchant account (refunds to cards of their own), and what an acquirer watches for merchant risk.
Counted per merchant over a sliding window of event time: approved, uncancelled sales and
refunds. Raised when the window holds at least ``min_refunds`` refunds and the refunds reach
``max_share`` of the sales; resolved once the share falls back below it. A rate that returns
within one window of its resolution reopens the same alert. Off by default (``enabled = true``
in ``[refund_rate]`` turns it on): what share is normal depends on the merchant's trade.

This rule is the registry's worked example (README, "Writing a rule"): its module, its tests and
one registry line.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from streams.config import Severity, positive_int, ratio
from streams.money import format_amount
from streams.rules.spec import AlertKind, Key, Rule, RuleSpec, Stake, detail_int, stake
from streams.timefmt import describe_duration, parse_duration

if TYPE_CHECKING:  # the registry is read by the engine: its rules import no engine module
    from streams.alerts import Alert
    from streams.engine.outbox import Outbox
    from streams.engine.state import MerchantState, TxnState

_EVIDENCE = 100
"""Refunds named in an alert at most (the counts cover them all)."""


@dataclass(frozen=True)
class RefundRateConfig:
    enabled: bool = False
    severity: Severity = "MEDIUM"
    window_us: int = 24 * 3600_000_000
    min_refunds: int = 5
    max_share: Fraction = Fraction(1, 4)


@dataclass
class _Window:
    """A merchant's counted transactions, sorted: (ts, is_refund, txn_id, amount, currency)."""

    entries: list[tuple[int, bool, str, int, str]] = field(default_factory=list)
    alert: Alert | None = None
    resolved_ts: int | None = None


_Entry = tuple[int, bool, str, int, str]


class RefundRate(Rule):
    def __init__(self, config: RefundRateConfig, out: Outbox) -> None:
        self.cfg = config
        self.out = out
        self.merchants: dict[str, _Window] = {}

    def on_transaction(self, ms: MerchantState, st: TxnState) -> None:
        t = st.txn
        if t.status != "APPROVED" or t.type not in ("SALE", "REFUND") or st.cancelled_by:
            return
        window = self.merchants.get(t.merchant_id)
        if window is None:
            window = self.merchants[t.merchant_id] = _Window()
        entries = window.entries
        insort(entries, (t.ts, t.type == "REFUND", t.txn_id, t.amount_minor, t.currency))
        horizon = entries[-1][0] - self.cfg.window_us
        stale = 0
        while entries[stale][0] < horizon:
            stale += 1
        del entries[:stale]
        if t.type == "REFUND" or window.alert is not None:
            self._judge(t.merchant_id, window, t.ts, t.txn_id)

    def on_cancel(self, ms: MerchantState, cancelled: TxnState, ts: int) -> None:
        window = self.merchants.get(cancelled.txn.merchant_id)
        if window is None:
            return
        txn_id = cancelled.txn.txn_id
        kept = [e for e in window.entries if e[2] != txn_id]
        if len(kept) != len(window.entries):
            window.entries = kept
            if window.alert is not None:
                self._judge(cancelled.txn.merchant_id, window, ts, txn_id)

    @classmethod
    def state_type(cls) -> Any:
        from streams.alerts import Alert  # noqa: PLC0415 (alerts import the registry)

        return list[tuple[str, list[_Entry], Alert | None, int | None]]

    def state(self) -> list[tuple[str, list[_Entry], Alert | None, int | None]]:
        return [(m, w.entries, w.alert, w.resolved_ts) for m, w in self.merchants.items()]

    def load_state(self, state: list[tuple[str, list[_Entry], Alert | None, int | None]]) -> None:
        self.merchants = {m: _Window(entries, alert, ts) for m, entries, alert, ts in state}

    def expire(self, tw: int) -> None:
        before = tw - self.cfg.window_us
        idle = [
            merchant_id
            for merchant_id, w in self.merchants.items()
            if (not w.entries or w.entries[-1][0] < before)
            and (w.alert is None or w.alert.status == "RESOLVED")
        ]
        for merchant_id in idle:
            del self.merchants[merchant_id]

    def _judge(self, merchant_id: str, window: _Window, ts: int, by: str) -> None:
        cfg = self.cfg
        refunds = [e for e in window.entries if e[1]]
        sales = len(window.entries) - len(refunds)
        share = cfg.max_share
        over = (
            len(refunds) >= cfg.min_refunds
            and len(refunds) * share.denominator >= share.numerator * sales
        )
        alert = window.alert
        is_open = alert is not None and alert.status == "OPEN"
        if over == is_open:
            return
        span = describe_duration(cfg.window_us)
        if not over:
            assert alert is not None
            window.resolved_ts = ts
            window.alert = self.out.resolve(
                alert,
                ts,
                f"Merchant {merchant_id}'s refunds are back below {_percent(share)} of its sales: "
                f"{len(refunds)} refunds, {sales} sales in the last {span}.",
                refunds_in_window=len(refunds),
                sales_in_window=sales,
            )
            return
        currency = refunds[-1][4]
        refunded = sum(e[3] for e in refunds if e[4] == currency)
        summary = (
            f"Merchant {merchant_id} refunded {len(refunds)} times against {sales} sales in "
            f"{span} ({format_amount(refunded, currency)} refunded): confirm the refunds with "
            "the merchant before they settle."
        )
        details = {
            "refunds": len(refunds),
            "sales": sales,
            "refunded_minor": refunded,
            "currency": currency,
            "max_share_percent": _percent(share),
            "window_seconds": cfg.window_us // 1_000_000,
            "refunds_omitted": max(0, len(refunds) - _EVIDENCE),
        }
        txn_ids = [e[2] for e in refunds[:_EVIDENCE]]
        if (
            alert is not None
            and window.resolved_ts is not None
            and (ts - window.resolved_ts <= cfg.window_us)
        ):
            window.alert = self.out.update(
                alert, ts, status="OPEN", summary=summary, txn_ids=txn_ids, details=details
            )
            return
        window.alert = self.out.open(
            "REFUND_RATE",
            cfg,
            (merchant_id, by),
            merchant_id=merchant_id,
            terminal_id=None,
            txn_ids=txn_ids,
            settlement_ids=[],
            ts=ts,
            summary=summary,
            details=details,
        )


def _percent(share: Fraction) -> str:
    return f"{float(share * 100):g}%"


def _refunded(alert: Alert) -> Stake | None:
    d = alert.details
    return stake(d.get("currency"), detail_int(d.get("refunded_minor")), "refunded")


SPEC = RuleSpec(
    "refund_rate",
    "A merchant's refunds reach `max_share` of its sales (at least `min_refunds`) within the "
    "window. Off by default.",
    RefundRateConfig,
    (AlertKind("REFUND_RATE", "RR", "Refund rate", _refunded),),
    {
        "window": Key("window_us", parse_duration, "the sliding window of a merchant's sales"),
        "min_refunds": Key("min_refunds", positive_int, "fewest refunds that raise it"),
        "max_share": Key("max_share", ratio, "refunds as a share of sales that raise it"),
    },
    make=RefundRate,
)
