"""Every rule posguard runs, one line each, and what derives from them.

Alert types and their id prefixes, money at stake, the configuration file's sections, the API's
list of types (which the dashboard reads) and ``posguard rules`` are read from ``RULES``.
A new rule is its module (a ``RuleSpec`` with ``make``), its tests and one line here.
"""

from __future__ import annotations

from typing import Final

from streams.config import Config, RuleSettings
from streams.rules import ledger, payouts, refund_rate
from streams.rules.spec import AlertKind, RuleSpec

RULES: Final[tuple[RuleSpec, ...]] = (
    ledger.DUPLICATE_CHARGE,
    ledger.DUPLICATE_SETTLEMENT,
    ledger.MISSING_SETTLEMENT,
    ledger.SETTLED_WITHOUT_APPROVAL,
    ledger.UNMATCHED_SETTLEMENT,
    ledger.AMOUNT_MISMATCH,
    ledger.REFUND_ANOMALY,
    ledger.TERMINAL_FAULT,
    ledger.FEED_GAP,
    ledger.VELOCITY,
    ledger.SUSPICIOUS_PATTERN,
    ledger.TERMINAL_CLOCK,
    refund_rate.SPEC,
    payouts.SPEC,
)

KINDS: Final[dict[str, AlertKind]] = {kind.name: kind for spec in RULES for kind in spec.kinds}
"""Alert types by name, in the registry's order."""

ALERT_TYPES: Final[tuple[str, ...]] = tuple(KINDS)

SECTIONS: Final[dict[str, RuleSpec]] = {spec.section: spec for spec in RULES}
"""Rules by their configuration section."""

PREFIXES: Final[dict[str, str]] = {name: kind.prefix for name, kind in KINDS.items()}


def settings(config: Config, spec: RuleSpec) -> RuleSettings:
    """``spec``'s settings in ``config``."""
    if spec.make is None:
        found: RuleSettings = getattr(config, spec.section)
        return found
    return config.rule(spec.section, spec.config)  # type: ignore[no-any-return]


def enabled_types(config: Config) -> list[str]:
    """The alert types that ``config`` lets rules raise, in the registry's order."""
    return [kind.name for spec in RULES if settings(config, spec).enabled for kind in spec.kinds]


def _check(rules: tuple[RuleSpec, ...]) -> None:
    """Names, prefixes and sections are unique: an id prefix shared by two types would make
    their ids collide, a section shared by two rules would configure both."""
    kinds = [kind for spec in rules for kind in spec.kinds]
    for what, values in (
        ("alert type", [k.name for k in kinds]),
        ("id prefix", [k.prefix for k in kinds]),
        ("section", [spec.section for spec in rules]),
    ):
        seen: set[str] = set()
        for value in values:
            if value in seen:
                raise ValueError(f"two rules declare the {what} {value!r}")
            seen.add(value)


_check(RULES)


def describe_types(config: Config) -> list[dict[str, object]]:
    """Every alert type with its rule, id prefix, title, severity and whether ``config``
    enables it, in the registry's order (the API's ``/api/types``, which the dashboard reads)."""
    rows: list[dict[str, object]] = []
    for spec in RULES:
        rule = settings(config, spec)
        for kind in spec.kinds:
            rows.append(
                {
                    "type": kind.name,
                    "prefix": kind.prefix,
                    "title": kind.title,
                    "rule": spec.section,
                    "severity": getattr(rule, kind.severity_field),
                    "enabled": rule.enabled,
                    "money_at_stake": kind.stake is not None,
                    "summary": spec.summary,
                }
            )
    return rows
