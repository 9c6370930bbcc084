"""Per-merchant money and health, read from the engines' state: what acquirers watch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from streams.alerts import Alert
from streams.engine.core import Engine
from streams.engine.views import payout_rule, unpaid_totals
from streams.money import format_amount
from streams.stake import money_at_stake


@dataclass(slots=True)
class MerchantSummary:
    merchant_id: str
    open_alerts: Counter[str] = field(default_factory=Counter)
    unsettled_count: int = 0
    unsettled_minor: Counter[str] = field(default_factory=Counter)
    """Awaiting settlement, by currency (not yet overdue included)."""
    at_risk_minor: Counter[str] = field(default_factory=Counter)
    """The money the merchant's open alerts are about (see ``streams.stake``), by currency."""
    terminals_in_fault: list[str] = field(default_factory=list)
    unpaid_minor: Counter[str] = field(default_factory=Counter)
    """Settled and not paid out yet (the pay-out feed's batches), by currency."""
    statement_late: bool = False
    """The merchant's pay-outs lag the others' by more than ``[payouts] feed_gap``."""

    def to_json(self) -> dict[str, object]:
        return {
            "merchant_id": self.merchant_id,
            "open_alerts": sum(self.open_alerts.values()),
            "open_alerts_by_type": dict(self.open_alerts),
            "unsettled_count": self.unsettled_count,
            "unsettled_minor": dict(self.unsettled_minor),
            "at_risk_minor": dict(self.at_risk_minor),
            "unsettled": {c: format_amount(v, c) for c, v in sorted(self.unsettled_minor.items())},
            "at_risk": {c: format_amount(v, c) for c, v in sorted(self.at_risk_minor.items())},
            "terminals_in_fault": sorted(self.terminals_in_fault),
            "unpaid_minor": dict(self.unpaid_minor),
            "unpaid": {c: format_amount(v, c) for c, v in sorted(self.unpaid_minor.items())},
            "statement_late": self.statement_late,
        }


def merchant_summaries(
    engines: Iterable[Engine], open_alerts: Iterable[Alert]
) -> list[MerchantSummary]:
    """One summary per merchant known to the engines or named by an open alert."""
    out: dict[str, MerchantSummary] = {}
    for engine in engines:
        for merchant_id, ms in engine.merchants.items():
            summary = out.setdefault(merchant_id, MerchantSummary(merchant_id))
            summary.unsettled_count += ms.unsettled_count
            summary.unsettled_minor.update({c: v for c, v in ms.unsettled_minor.items() if v})
        for merchant_id, amounts in unpaid_totals(engine).items():
            out.setdefault(merchant_id, MerchantSummary(merchant_id)).unpaid_minor.update(amounts)
        rule = payout_rule(engine)
        for merchant_id in rule.feed.late_statements() if rule is not None else ():
            out.setdefault(merchant_id, MerchantSummary(merchant_id)).statement_late = True
    for alert in open_alerts:
        summary = out.setdefault(alert.merchant_id, MerchantSummary(alert.merchant_id))
        summary.open_alerts[alert.type] += 1
        stake = money_at_stake(alert)
        if stake is not None:
            summary.at_risk_minor[stake.currency] += stake.minor
        if alert.type == "TERMINAL_FAULT" and alert.terminal_id is not None:
            summary.terminals_in_fault.append(alert.terminal_id)
    return sorted(out.values(), key=lambda s: s.merchant_id)


def fleet_totals(per_merchant: Iterable[Mapping[str, int]]) -> dict[str, str]:
    """Amounts summed per currency over the fleet, formatted (exact integers, no float)."""
    total: Counter[str] = Counter()
    for amounts in per_merchant:
        total.update(amounts)
    return {c: format_amount(v, c) for c, v in sorted(total.items()) if v}
