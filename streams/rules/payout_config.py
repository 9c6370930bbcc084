"""The pay-out rule's settings (``[payouts]`` in the configuration file)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from streams.config import (
    Severity,
    boolean,
    non_negative_int,
    positive_duration,
    ratio,
    severity,
)
from streams.rules.spec import Key

DAY: Final = 86400_000_000


@dataclass(frozen=True)
class PayoutConfig:
    enabled: bool = True
    severity: Severity = "HIGH"
    """PAYOUT_MISSING and PAYOUT_MISMATCH."""
    unexplained_severity: Severity = "MEDIUM"
    missing_after_us: int = 48 * 3600_000_000
    unexplained_after_us: int = 48 * 3600_000_000
    tolerance_minor: int = 0
    match_window_us: int = 7 * DAY
    near_share: Fraction = Fraction(1, 5)
    feed_gap_us: int = 96 * 3600_000_000
    hold_after_close_us: int = 2 * 3600_000_000
    keep_us: int = 35 * DAY
    judge_unpaid_merchants: bool = True


@dataclass(frozen=True)
class Severe:
    """The settings ``Outbox.open`` reads, for the type with a severity of its own."""

    severity: Severity
    enabled: bool = True


KEYS: Final[dict[str, Key]] = {
    "judge_unpaid_merchants": Key(
        "judge_unpaid_merchants",
        boolean,
        "false: a merchant's batches are judged only once a pay-out of it arrived (when only "
        "some merchants' statements are imported)",
    ),
    "unexplained_severity": Key(
        "unexplained_severity", severity, "the severity of UNEXPLAINED_CREDIT"
    ),
    "missing_after": Key(
        "missing_after_us", positive_duration, "how long after settlement a batch is paid"
    ),
    "unexplained_after": Key(
        "unexplained_after_us",
        positive_duration,
        "how long after a credit's value date its batch may still settle",
    ),
    "tolerance_minor": Key(
        "tolerance_minor", non_negative_int, "a pay-out within this of its batches matches"
    ),
    "match_window": Key(
        "match_window_us",
        positive_duration,
        "without batch_ids: how long before the value date a batch it pays may settle",
    ),
    "near_share": Key(
        "near_share",
        ratio,
        "without batch_ids: a pay-out this close to unpaid batches pays them, short or over",
    ),
    "feed_gap": Key(
        "feed_gap_us",
        positive_duration,
        "the pay-out feed this far behind the settlements has stalled: no missing judgments",
    ),
    "hold_after_close": Key(
        "hold_after_close_us",
        positive_duration,
        "after a stall, how far the pay-out feed goes on before missing pay-outs are judged",
    ),
    "keep": Key("keep_us", positive_duration, "how long batches and pay-outs are followed"),
}
