"""Detection configuration: the contract's defaults, overridable from a TOML file.

One frozen object, built once by the driver and passed down: nothing here is global. Durations
are kept in microseconds, fee rates as exact fractions. Unknown keys are refused with the key's
path so a typo never silently falls back to a default.

Example (every key optional)::

    [duplicate_charge]
    window = "120s"

    [missing_settlement]
    after = "26h"

    [fees]
    CARD = "0.60%"
    QR = "0.38%"
    tolerance_minor = 1

    [fees.merchants.M0042]
    CARD = "0.45%"

    [velocity]
    enabled = false

    [terminal_clock]
    tolerance = "1h"

    [input]
    card_numbers_in_ids = "networks"   # or "luhn" (stricter), "off"

    [cases.sla]        # how long a case may wait for an operator, by the alert's severity
    CRITICAL = "4h"
    HIGH = "24h"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final, Literal, Protocol, TypeAlias, TypeVar

from streams.cardmask import IdCheck
from streams.cases import DEFAULT_SLA_S
from streams.money import parse_rate
from streams.timefmt import parse_duration

Severity: TypeAlias = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"]
SEVERITIES: Final = ("CRITICAL", "HIGH", "MEDIUM", "LOW")


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and key."""


class RuleSettings(Protocol):
    """What every rule's settings have: a frozen dataclass with these two fields and its own."""

    @property
    def enabled(self) -> bool: ...

    @property
    def severity(self) -> Severity: ...


@dataclass(frozen=True)
class RuleConfig:
    enabled: bool = True
    severity: Severity = "HIGH"


@dataclass(frozen=True)
class DuplicateChargeConfig(RuleConfig):
    window_us: int = 120_000_000


@dataclass(frozen=True)
class DuplicateSettlementConfig(RuleConfig):
    severity: Severity = "CRITICAL"


@dataclass(frozen=True)
class MissingSettlementConfig(RuleConfig):
    after_us: int = 26 * 3600_000_000


@dataclass(frozen=True)
class SettledWithoutApprovalConfig(RuleConfig):
    severity: Severity = "CRITICAL"


@dataclass(frozen=True)
class UnmatchedSettlementConfig(RuleConfig):
    after_us: int = 3600_000_000


@dataclass(frozen=True)
class AmountMismatchConfig(RuleConfig):
    pass


@dataclass(frozen=True)
class RefundAnomalyConfig(RuleConfig):
    pass


@dataclass(frozen=True)
class TerminalFaultConfig(RuleConfig):
    severity: Severity = "MEDIUM"
    window_us: int = 600_000_000
    min_attempts: int = 5
    timeout_ratio: Fraction = Fraction(1, 2)


@dataclass(frozen=True)
class TerminalClockConfig(RuleConfig):
    """How far a terminal's times may stray from its partition's before its clock is judged
    wrong (``streams/engine/clock.py``). Disabling it silences the alert only: times beyond
    the tolerance never move the watermarks."""

    severity: Severity = "MEDIUM"
    tolerance_us: int = 3600_000_000


@dataclass(frozen=True)
class FeedGapConfig(RuleConfig):
    severity: Severity = "CRITICAL"
    gap_us: int = 30 * 3600_000_000
    hold_after_close_us: int = 2 * 3600_000_000


@dataclass(frozen=True)
class VelocityConfig(RuleConfig):
    severity: Severity = "MEDIUM"
    window_us: int = 600_000_000
    max_sales: int = 5
    distinct_merchants: int = 3


@dataclass(frozen=True)
class SuspiciousPatternConfig(RuleConfig):
    """Raised only when a model file is configured (``--model`` / ``POSGUARD_MODEL``)."""

    severity: Severity = "MEDIUM"


@dataclass(frozen=True)
class FeeConfig:
    """Merchant discount rates by channel, with per-merchant overrides."""

    rates: Mapping[str, Fraction] = field(
        default_factory=lambda: {"CARD": Fraction(6, 1000), "QR": Fraction(38, 10000)}
    )
    merchant_rates: Mapping[str, Mapping[str, Fraction]] = field(default_factory=dict)
    tolerance_minor: int = 1

    def rate(self, merchant_id: str, channel: str) -> Fraction:
        override = self.merchant_rates.get(merchant_id)
        if override is not None and channel in override:
            return override[channel]
        return self.rates[channel]


_R = TypeVar("_R")


@dataclass(frozen=True)
class Config:
    duplicate_charge: DuplicateChargeConfig = DuplicateChargeConfig()
    duplicate_settlement: DuplicateSettlementConfig = DuplicateSettlementConfig()
    missing_settlement: MissingSettlementConfig = MissingSettlementConfig()
    settled_without_approval: SettledWithoutApprovalConfig = SettledWithoutApprovalConfig()
    unmatched_settlement: UnmatchedSettlementConfig = UnmatchedSettlementConfig()
    amount_mismatch: AmountMismatchConfig = AmountMismatchConfig()
    refund_anomaly: RefundAnomalyConfig = RefundAnomalyConfig()
    terminal_fault: TerminalFaultConfig = TerminalFaultConfig()
    terminal_clock: TerminalClockConfig = TerminalClockConfig()
    feed_gap: FeedGapConfig = FeedGapConfig()
    velocity: VelocityConfig = VelocityConfig()
    suspicious_pattern: SuspiciousPatternConfig = SuspiciousPatternConfig()
    fees: FeeConfig = FeeConfig()
    # How ids are checked for card numbers (``streams.cardmask.id_has_card_number``): an event
    # whose id is judged one is a dead letter, never echoed masked.
    card_numbers_in_ids: IdCheck = "networks"
    # How long evidence is kept after its event time (refunds reach back this far).
    retention_us: int = 35 * 86400_000_000
    # How long a case may wait for an operator, by severity, in seconds (not detection: the
    # worker's case view and its overdue gauge).
    case_sla_s: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_SLA_S))
    # Settings of the rules outside the ledger (``streams/rules/registry.py``), by section;
    # a rule not named here runs with its defaults.
    rules: Mapping[str, Any] = field(default_factory=dict)

    def rule(self, section: str, default: type[_R]) -> _R:
        """The settings of the registry's rule ``section`` (its defaults when not configured)."""
        found = self.rules.get(section)
        return found if isinstance(found, default) else default()


def severity(value: Any) -> str:
    """A severity name, as the configuration file's keys take it."""
    if value not in SEVERITIES:
        raise ValueError(f"expected one of {', '.join(SEVERITIES)}, got {value!r}")
    return str(value)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return value


def non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


def ratio(value: Any) -> Fraction:
    rate = parse_rate(value)
    if rate <= 0:
        raise ValueError(f"expected a ratio above 0, got {value!r}")
    return rate


def positive_duration(value: Any) -> int:
    duration = parse_duration(value)
    if duration <= 0:
        raise ValueError(f"expected a duration above zero, got {value!r}")
    return duration
