"""The money an alert is about: what an operator stands to recover or refund if it is real.

Read from the alert's own details by its type's ``stake`` in the registry, so every driver
(worker, replay summaries, the dashboard) agrees. Amounts stay integers in minor units. Alerts
about behaviour rather than money (velocity, terminal faults, a feed gap, the model's suspicions)
have no stake: their money is not yet lost.
"""

from __future__ import annotations

from streams.alerts import Alert
from streams.rules.registry import KINDS
from streams.rules.spec import Stake

__all__ = ["Stake", "money_at_stake"]


def money_at_stake(alert: Alert) -> Stake | None:
    kind = KINDS.get(alert.type)
    if kind is None or kind.stake is None:
        return None
    return kind.stake(alert)
