"""What an engine's rules know that operators read (per-merchant money), without the rules'
internals spreading to the drivers."""

from __future__ import annotations

from streams.engine.core import Engine
from streams.rules.payouts import Payouts


def payout_rule(engine: Engine) -> Payouts | None:
    for rule in engine.rules:
        if isinstance(rule, Payouts):
            return rule
    return None


def unpaid_totals(engine: Engine) -> dict[str, dict[str, int]]:
    """Per merchant, per currency: settled and not paid out yet (empty without pay-outs)."""
    rule = payout_rule(engine)
    if rule is None or rule.feed.payout_wm is None:
        return {}
    return rule.unpaid_totals()
