"""The ledger's rules as the registry knows them: alert types, configuration, money at stake.

Their handlers are the engine's own event-time steps (``streams/engine/``: reconciliation,
duplicates, refunds, the feed, terminals, velocity, the terminal clock, the model), so each spec
here has no ``make``; its settings are the ``Config`` field named like its section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streams.config import (
    AmountMismatchConfig,
    DuplicateChargeConfig,
    DuplicateSettlementConfig,
    FeedGapConfig,
    MissingSettlementConfig,
    RefundAnomalyConfig,
    SettledWithoutApprovalConfig,
    SuspiciousPatternConfig,
    TerminalClockConfig,
    TerminalFaultConfig,
    UnmatchedSettlementConfig,
    VelocityConfig,
    positive_duration,
    positive_int,
    ratio,
)
from streams.rules.spec import AlertKind, Key, RuleSpec, Stake, detail_int, stake
from streams.timefmt import parse_duration

if TYPE_CHECKING:  # alert ids are read from the registry: it imports no alert module
    from streams.alerts import Alert


def _missing(alert: Alert) -> Stake | None:
    d = alert.details
    return stake(d.get("currency"), detail_int(d.get("amount_minor")), "not settled")


def _charged_twice(alert: Alert) -> Stake | None:
    d = alert.details
    charges = len(alert.txn_ids)
    omitted = d.get("transactions_omitted")
    if isinstance(omitted, int):  # a cluster too large to list (duplicates.py)
        charges = len(d.get("transactions") or []) + omitted
    extra = max(0, charges - 1) * detail_int(d.get("amount_minor"))
    return stake(d.get("currency"), extra, "charged twice")


def _line_gross(why: str) -> Any:
    def read(alert: Alert) -> Stake | None:
        line = alert.details.get("settlement") or {}
        return stake(line.get("currency"), detail_int(line.get("gross_minor")), why)

    return read


def _paid_twice(alert: Alert) -> Stake | None:
    lines = alert.details.get("settlements") or []
    extra = sum(detail_int(x.get("gross_minor")) for x in lines[1:])
    return stake(lines[0].get("currency") if lines else None, extra, "paid twice")


def _wrong_pay_out(alert: Alert) -> Stake | None:
    d = alert.details
    expected_net = detail_int(d.get("amount_minor")) - detail_int(d.get("expected_fee_minor"))
    wrong = abs(expected_net - detail_int(d.get("net_minor")))
    return stake(d.get("currency"), wrong, "wrong pay-out")


def _refund(alert: Alert) -> Stake | None:
    d = alert.details
    if d.get("reason") == "EXCEEDS_ORIGINAL":
        return stake(d.get("currency"), detail_int(d.get("excess_minor")), "over-refunded")
    refund = d.get("refund") or {}
    return stake(refund.get("currency"), detail_int(refund.get("amount_minor")), "refund, no sale")


_WINDOW = "how far apart in event time the events may be"

DUPLICATE_CHARGE = RuleSpec(
    "duplicate_charge",
    "The same card charged the same amount at one merchant twice within the window.",
    DuplicateChargeConfig,
    (AlertKind("DUPLICATE_CHARGE", "DC", "Duplicate charge", _charged_twice),),
    {"window": Key("window_us", parse_duration, _WINDOW)},
)
DUPLICATE_SETTLEMENT = RuleSpec(
    "duplicate_settlement",
    "One transaction settled by more than one line.",
    DuplicateSettlementConfig,
    (AlertKind("DUPLICATE_SETTLEMENT", "DS", "Duplicate settlement", _paid_twice),),
    {},
)
MISSING_SETTLEMENT = RuleSpec(
    "missing_settlement",
    "An approved sale or refund with no settlement line once the settlement feed has passed "
    "its time by `after`.",
    MissingSettlementConfig,
    (AlertKind("MISSING_SETTLEMENT", "MS", "Missing settlement", _missing),),
    {"after": Key("after_us", parse_duration, "how long after the transaction a line is due")},
)
SETTLED_WITHOUT_APPROVAL = RuleSpec(
    "settled_without_approval",
    "A settlement line for a declined, timed-out or cancelled transaction.",
    SettledWithoutApprovalConfig,
    (
        AlertKind(
            "SETTLED_WITHOUT_APPROVAL", "SW", "Settled without approval", _line_gross("to refund")
        ),
    ),
    {},
)
UNMATCHED_SETTLEMENT = RuleSpec(
    "unmatched_settlement",
    "A settlement line whose transaction has not arrived `after` the line.",
    UnmatchedSettlementConfig,
    (
        AlertKind(
            "UNMATCHED_SETTLEMENT", "UM", "Unmatched settlement", _line_gross("paid, no sale")
        ),
    ),
    {"after": Key("after_us", parse_duration, "how long a line waits for its transaction")},
)
AMOUNT_MISMATCH = RuleSpec(
    "amount_mismatch",
    "Gross, fee or net of a line differ from the transaction and the merchant's fee rate.",
    AmountMismatchConfig,
    (AlertKind("AMOUNT_MISMATCH", "AM", "Amount mismatch", _wrong_pay_out),),
    {},
)
REFUND_ANOMALY = RuleSpec(
    "refund_anomaly",
    "A refund with no approved sale behind it, or refunds beyond the sale.",
    RefundAnomalyConfig,
    (AlertKind("REFUND_ANOMALY", "RA", "Refund anomaly", _refund),),
    {},
)
TERMINAL_FAULT = RuleSpec(
    "terminal_fault",
    "A terminal whose attempts time out at `timeout_ratio` or more within the window.",
    TerminalFaultConfig,
    (AlertKind("TERMINAL_FAULT", "TF", "Terminal fault"),),
    {
        "window": Key("window_us", parse_duration, "the sliding window of attempts"),
        "min_attempts": Key("min_attempts", positive_int, "fewest attempts judged"),
        "timeout_ratio": Key("timeout_ratio", ratio, "share of time-outs that raises it"),
    },
)
FEED_GAP = RuleSpec(
    "feed_gap",
    "The settlement feed behind the transactions by more than `gap` (one alert for the feed).",
    FeedGapConfig,
    (AlertKind("SETTLEMENT_FEED_GAP", "FG", "Settlement feed gap"),),
    {
        "gap": Key("gap_us", parse_duration, "how far settlements may trail transactions"),
        "hold_after_close": Key(
            "hold_after_close_us", parse_duration, "missing judgments held after a gap closes"
        ),
    },
)
VELOCITY = RuleSpec(
    "velocity",
    "One card used more than `max_sales` times, or at `distinct_merchants` merchants, within "
    "the window.",
    VelocityConfig,
    (AlertKind("VELOCITY", "VE", "Card velocity"),),
    {
        "window": Key("window_us", parse_duration, "the sliding window of a card's sales"),
        "max_sales": Key("max_sales", positive_int, "sales of one card allowed in the window"),
        "distinct_merchants": Key(
            "distinct_merchants", positive_int, "merchants of one card that raise it"
        ),
    },
)
SUSPICIOUS_PATTERN = RuleSpec(
    "suspicious_pattern",
    "A sale the model scores as anomalous (only with a model file).",
    SuspiciousPatternConfig,
    (AlertKind("SUSPICIOUS_PATTERN", "SP", "Suspicious pattern"),),
    {},
)
TERMINAL_CLOCK = RuleSpec(
    "terminal_clock",
    "A terminal whose times stray from its partition's by more than `tolerance`.",
    TerminalClockConfig,
    (AlertKind("TERMINAL_CLOCK", "TC", "Terminal clock"),),
    {"tolerance": Key("tolerance_us", positive_duration, "how far a terminal's time may stray")},
)
