"""The configuration file: a TOML document overlaid on ``Config``'s defaults.

Sections and keys are the rule registry's (``streams/rules/registry.py``) plus ``[fees]``,
``[retention]``, ``[input]`` and ``[cases]``; an unknown section or key is refused with its path,
so a typo never silently falls back to a default. The format is described in ``streams/config.py``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

from streams.cardmask import ID_CHECKS, IdCheck
from streams.config import (
    SEVERITIES,
    Config,
    ConfigError,
    FeeConfig,
    boolean,
    non_negative_int,
    severity,
)
from streams.money import parse_rate
from streams.rules.registry import SECTIONS
from streams.timefmt import parse_duration

# TOML key -> (dataclass field, parser). Keys shared by every rule come first.
_COMMON: Final[dict[str, tuple[str, Callable[[Any], Any]]]] = {
    "enabled": ("enabled", boolean),
    "severity": ("severity", severity),
}
CHANNELS: Final = ("CARD", "QR")


def _apply_rule(
    base: Any, table: Mapping[str, Any], where: str, own: Mapping[str, tuple[str, Any]]
) -> Any:
    keys = {**_COMMON, **own}
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
        tolerance = non_negative_int(tolerance)
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
    rules = dict(config.rules)
    for section, table in data.items():
        if section == "input":
            changes["card_numbers_in_ids"] = _id_check(table)
        elif section == "retention":
            if not isinstance(table, dict) or set(table) - {"evidence"}:
                raise ConfigError("[retention] takes one key: evidence = '35d'")
            try:
                changes["retention_us"] = parse_duration(table.get("evidence", "35d"))
            except ValueError as exc:
                raise ConfigError(f"[retention] evidence: {exc}") from None
        elif section == "cases":
            changes["case_sla_s"] = _case_sla(table, config.case_sla_s)
        elif section == "fees":
            if not isinstance(table, dict):
                raise ConfigError("[fees] must be a table")
            changes["fees"] = _apply_fees(config.fees, table)
        elif section in SECTIONS:
            if not isinstance(table, dict):
                raise ConfigError(f"[{section}] must be a table")
            spec = SECTIONS[section]
            own = {key: (k.field, k.parse) for key, k in spec.keys.items()}
            if spec.make is None:  # a ledger rule: a field of Config
                changes[section] = _apply_rule(getattr(config, section), table, section, own)
            else:
                current = config.rule(section, spec.config)
                rules[section] = _apply_rule(current, table, section, own)
        else:
            known = ", ".join(sorted({*SECTIONS, "fees", "retention", "input", "cases"}))
            raise ConfigError(f"unknown section [{section}] (known: {known})")
    if rules != config.rules:
        changes["rules"] = rules
    return replace(config, **changes)


def _case_sla(table: Any, base: Mapping[str, int]) -> dict[str, int]:
    if (
        not isinstance(table, dict)
        or set(table) - {"sla"}
        or not isinstance(table.get("sla", {}), dict)
    ):
        raise ConfigError("[cases] takes one table: [cases.sla] with CRITICAL = '4h' and so on")
    sla = dict(base)
    for level, value in table.get("sla", {}).items():
        if level not in SEVERITIES:
            raise ConfigError(
                f"[cases.sla] has no severity {level!r} (known: {', '.join(SEVERITIES)})"
            )
        try:
            duration_us = parse_duration(value)
        except ValueError as exc:
            raise ConfigError(f"[cases.sla] {level}: {exc}") from None
        if duration_us <= 0:
            raise ConfigError(f"[cases.sla] {level}: expected a duration above zero")
        sla[level] = duration_us // 1_000_000
    return sla


def _id_check(table: Any) -> IdCheck:
    if not isinstance(table, dict) or set(table) - {"card_numbers_in_ids"}:
        raise ConfigError(
            "[input] takes one key: card_numbers_in_ids = 'networks' | 'luhn' | 'off'"
        )
    check = table.get("card_numbers_in_ids", "networks")
    if check not in ID_CHECKS:
        raise ConfigError(
            f"[input] card_numbers_in_ids: expected one of {', '.join(ID_CHECKS)}, got {check!r}"
        )
    return check  # type: ignore[no-any-return]


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
