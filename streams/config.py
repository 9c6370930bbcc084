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
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias, TypeVar

from streams.cardmask import ID_CHECKS, IdCheck
from streams.money import parse_rate
from streams.timefmt import parse_duration

Severity: TypeAlias = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"]
SEVERITIES: Final = ("CRITICAL", "HIGH", "MEDIUM", "LOW")


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and key."""


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


_R = TypeVar("_R", bound=RuleConfig)


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return value


def _non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


def _ratio(value: Any) -> Fraction:
    rate = parse_rate(value)
    if rate <= 0:
        raise ValueError(f"expected a ratio above 0, got {value!r}")
    return rate


def _positive_duration(value: Any) -> int:
    duration = parse_duration(value)
    if duration <= 0:
        raise ValueError(f"expected a duration above zero, got {value!r}")
    return duration


def _severity(value: Any) -> str:
    if value not in SEVERITIES:
        raise ValueError(f"expected one of {', '.join(SEVERITIES)}, got {value!r}")
    return str(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


# TOML key -> (dataclass field, parser). Keys shared by every rule come first.
_COMMON: Final[dict[str, tuple[str, Callable[[Any], Any]]]] = {
    "enabled": ("enabled", _boolean),
    "severity": ("severity", _severity),
}
_RULE_KEYS: Final[dict[str, dict[str, tuple[str, Callable[[Any], Any]]]]] = {
    "duplicate_charge": {"window": ("window_us", parse_duration)},
    "duplicate_settlement": {},
    "missing_settlement": {"after": ("after_us", parse_duration)},
    "settled_without_approval": {},
    "unmatched_settlement": {"after": ("after_us", parse_duration)},
    "amount_mismatch": {},
    "refund_anomaly": {},
    "terminal_fault": {
        "window": ("window_us", parse_duration),
        "min_attempts": ("min_attempts", _positive_int),
        "timeout_ratio": ("timeout_ratio", _ratio),
    },
    "terminal_clock": {"tolerance": ("tolerance_us", _positive_duration)},
    "feed_gap": {
        "gap": ("gap_us", parse_duration),
        "hold_after_close": ("hold_after_close_us", parse_duration),
    },
    "velocity": {
        "window": ("window_us", parse_duration),
        "max_sales": ("max_sales", _positive_int),
        "distinct_merchants": ("distinct_merchants", _positive_int),
    },
    "suspicious_pattern": {},
}
CHANNELS: Final = ("CARD", "QR")


def _apply_rule(base: _R, table: Mapping[str, Any], where: str) -> _R:
    keys = {**_COMMON, **_RULE_KEYS[where]}
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key not in keys:
            raise ConfigError(f"[{where}] has no key {key!r} (known: {', '.join(sorted(keys))})")
        name, parse = keys[key]
        try:
            changes[name] = parse(value)
        except ValueError as exc:
            raise ConfigError(f"[{where}] {key}: {exc}") from None
    return replace(base, **changes)


def _parse_rates(table: Mapping[str, Any], where: str) -> dict[str, Fraction]:
    rates: dict[str, Fraction] = {}
    for channel, value in table.items():
        if channel not in CHANNELS:
            raise ConfigError(f"[{where}] has no channel {channel!r} (known: CARD, QR)")
        try:
            rates[channel] = parse_rate(value)
        except ValueError as exc:
            raise ConfigError(f"[{where}] {channel}: {exc}") from None
    return rates


def _apply_fees(base: FeeConfig, table: Mapping[str, Any]) -> FeeConfig:
    table = dict(table)
    merchants = table.pop("merchants", {})
    tolerance = table.pop("tolerance_minor", base.tolerance_minor)
    try:
        tolerance = _non_negative_int(tolerance)
    except ValueError as exc:
        raise ConfigError(f"[fees] tolerance_minor: {exc}") from None
    rates = {**base.rates, **_parse_rates(table, "fees")}
    if not isinstance(merchants, dict):
        raise ConfigError("[fees.merchants] must be a table of merchant tables")
    merchant_rates = dict(base.merchant_rates)
    for merchant_id, override in merchants.items():
        if not isinstance(override, dict):
            raise ConfigError(f"[fees.merchants.{merchant_id}] must be a table like CARD = '0.45%'")
        merchant_rates[merchant_id] = _parse_rates(override, f"fees.merchants.{merchant_id}")
    return FeeConfig(rates=rates, merchant_rates=merchant_rates, tolerance_minor=tolerance)


def config_from_mapping(data: Mapping[str, Any], base: Config | None = None) -> Config:
    """Overlay a parsed TOML document on ``base`` (the defaults when omitted)."""
    config = base or Config()
    changes: dict[str, Any] = {}
    rule_fields = {f.name for f in fields(Config)} - {"fees", "retention_us", "card_numbers_in_ids"}
    for section, table in data.items():
        if section == "input":
            if not isinstance(table, dict) or set(table) - {"card_numbers_in_ids"}:
                raise ConfigError(
                    "[input] takes one key: card_numbers_in_ids = 'networks' | 'luhn' | 'off'"
                )
            check = table.get("card_numbers_in_ids", "networks")
            if check not in ID_CHECKS:
                raise ConfigError(
                    f"[input] card_numbers_in_ids: expected one of {', '.join(ID_CHECKS)}, "
                    f"got {check!r}"
                )
            changes["card_numbers_in_ids"] = check
        elif section == "retention":
            if not isinstance(table, dict) or set(table) - {"evidence"}:
                raise ConfigError("[retention] takes one key: evidence = '35d'")
            try:
                changes["retention_us"] = parse_duration(table.get("evidence", "35d"))
            except ValueError as exc:
                raise ConfigError(f"[retention] evidence: {exc}") from None
        elif section == "fees":
            if not isinstance(table, dict):
                raise ConfigError("[fees] must be a table")
            changes["fees"] = _apply_fees(config.fees, table)
        elif section in rule_fields:
            if not isinstance(table, dict):
                raise ConfigError(f"[{section}] must be a table")
            changes[section] = _apply_rule(getattr(config, section), table, section)
        else:
            known = ", ".join(sorted(rule_fields | {"fees", "retention", "input"}))
            raise ConfigError(f"unknown section [{section}] (known: {known})")
    return replace(config, **changes)


def load_config(path: str | Path | None) -> Config:
    """The defaults, overlaid with the TOML file at ``path`` when one is given."""
    if path is None:
        return Config()
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    try:
        return config_from_mapping(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
