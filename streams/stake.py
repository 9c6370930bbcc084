"""The money an alert is about: what an operator stands to recover or refund if it is real.

Read from the alert's own details, so every driver (worker, replay summaries, the dashboard) agrees.
Amounts stay integers in minor units. Alerts about behaviour rather than money (velocity, terminal
faults, a feed gap, the model's suspicions) have no stake: their money is not yet lost.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from streams.alerts import Alert


class Stake(NamedTuple):
    currency: str
    minor: int
    why: str


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def money_at_stake(alert: Alert) -> Stake | None:
    d: dict[str, Any] = alert.details
    kind = alert.type
    if kind == "MISSING_SETTLEMENT":
        return _stake(d.get("currency"), _int(d.get("amount_minor")), "not settled")
    if kind == "DUPLICATE_CHARGE":
        charges = len(alert.txn_ids)
        omitted = d.get("transactions_omitted")
        if isinstance(omitted, int):  # a cluster too large to list (duplicates.py)
            charges = len(d.get("transactions") or []) + omitted
        extra = max(0, charges - 1) * _int(d.get("amount_minor"))
        return _stake(d.get("currency"), extra, "charged twice")
    if kind == "SETTLED_WITHOUT_APPROVAL":
        line = d.get("settlement") or {}
        return _stake(line.get("currency"), _int(line.get("gross_minor")), "to refund")
    if kind == "UNMATCHED_SETTLEMENT":
        line = d.get("settlement") or {}
        return _stake(line.get("currency"), _int(line.get("gross_minor")), "paid, no sale")
    if kind == "DUPLICATE_SETTLEMENT":
        lines = d.get("settlements") or []
        extra = sum(_int(x.get("gross_minor")) for x in lines[1:])
        currency = lines[0].get("currency") if lines else None
        return _stake(currency, extra, "paid twice")
    if kind == "AMOUNT_MISMATCH":
        expected_net = _int(d.get("amount_minor")) - _int(d.get("expected_fee_minor"))
        return _stake(
            d.get("currency"), abs(expected_net - _int(d.get("net_minor"))), "wrong pay-out"
        )
    if kind == "REFUND_ANOMALY":
        if d.get("reason") == "EXCEEDS_ORIGINAL":
            return _stake(d.get("currency"), _int(d.get("excess_minor")), "over-refunded")
        refund = d.get("refund") or {}
        return _stake(refund.get("currency"), _int(refund.get("amount_minor")), "refund, no sale")
    return None


def _stake(currency: Any, minor: int, why: str) -> Stake | None:
    if not isinstance(currency, str) or minor <= 0:
        return None
    return Stake(currency, minor, why)
