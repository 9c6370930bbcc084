"""The rules' reference, written from the registry: ``posguard rules`` prints it, and the
README's table is this text (a test compares them), so the docs cannot drift from the code."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from streams.config import Config
from streams.money import format_rate
from streams.rules.registry import RULES, settings

_UNITS = (("d", 86400_000_000), ("h", 3600_000_000), ("m", 60_000_000), ("s", 1_000_000))


def toml_value(name: str, value: Any) -> str:
    """A setting as it is written in the configuration file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if name.endswith("_us") and isinstance(value, int):
        for unit, size in _UNITS:
            if value % size == 0:
                return f'"{value // size}{unit}"'
        return f'"{value / 1_000_000}s"'
    if isinstance(value, Fraction):
        return f'"{format_rate(value)}"'
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def rules_markdown(config: Config) -> str:
    """Two tables: every alert type with its rule, and every rule's keys with ``config``'s values
    (the defaults when ``config`` is the default)."""
    lines = [
        "| Alert type | Id prefix | Section | Severity | On | Money at stake | Raised when |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec in RULES:
        rule = settings(config, spec)
        for kind in spec.kinds:
            lines.append(
                f"| `{kind.name}` | `{kind.prefix}` | `[{spec.section}]` | "
                f"{getattr(rule, kind.severity_field)} | "
                f"{'yes' if rule.enabled else 'no'} | {'yes' if kind.stake else 'no'} | "
                f"{spec.summary} |"
            )
    lines += ["", "| Key | Value | Meaning |", "|---|---|---|"]
    for spec in RULES:
        rule = settings(config, spec)
        lines.append(
            f"| `[{spec.section}] enabled`, `severity` | {toml_value('enabled', rule.enabled)}, "
            f'"{rule.severity}" | every rule |'
        )
        for key, k in spec.keys.items():
            value = toml_value(k.field, getattr(rule, k.field))
            lines.append(f"| `[{spec.section}] {key}` | {value} | {k.doc} |")
    return "\n".join(lines) + "\n"
