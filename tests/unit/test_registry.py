"""The rule registry: one declaration per rule, from which alert types, id prefixes,
configuration, money at stake, the API's type list and the docs derive."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from streams.alerts import alert_id
from streams.config import Config, ConfigError
from streams.configfile import config_from_mapping
from streams.rules import registry
from streams.rules.docs import rules_markdown, toml_value
from streams.rules.registry import ALERT_TYPES, KINDS, RULES, describe_types, enabled_types
from streams.rules.spec import AlertKind, RuleSpec

ROOT = Path(__file__).resolve().parents[2]

# Alert ids are stable across releases: these prefixes are in operators' tickets.
LEDGER_PREFIXES = {
    "DUPLICATE_CHARGE": "DC", "DUPLICATE_SETTLEMENT": "DS", "MISSING_SETTLEMENT": "MS",
    "SETTLED_WITHOUT_APPROVAL": "SW", "UNMATCHED_SETTLEMENT": "UM", "AMOUNT_MISMATCH": "AM",
    "REFUND_ANOMALY": "RA", "TERMINAL_FAULT": "TF", "SETTLEMENT_FEED_GAP": "FG",
    "VELOCITY": "VE", "SUSPICIOUS_PATTERN": "SP", "TERMINAL_CLOCK": "TC",
}  # fmt: skip


def test_the_ledger_types_keep_their_order_and_prefixes() -> None:
    assert list(ALERT_TYPES[: len(LEDGER_PREFIXES)]) == list(LEDGER_PREFIXES)
    for kind, prefix in LEDGER_PREFIXES.items():
        assert KINDS[kind].prefix == prefix
    # Ids as published before the registry existed.
    assert alert_id("DUPLICATE_CHARGE", "M1", "T1") == "DC-dfc4f55534fff2d6069f"
    assert alert_id("SETTLEMENT_FEED_GAP", "*", 3) == "FG-1385d32b11f760e79844"


def test_a_duplicate_name_prefix_or_section_is_refused() -> None:
    spec = RULES[0]
    twin = dataclasses.replace(spec, section="other", kinds=(AlertKind("OTHER", "DC", "x"),))
    with pytest.raises(ValueError, match="id prefix 'DC'"):
        registry._check((spec, twin))
    with pytest.raises(ValueError, match="section"):
        registry._check((spec, dataclasses.replace(spec, kinds=(AlertKind("B", "BB", "b"),))))


def test_every_rule_section_is_configurable_and_typos_are_refused() -> None:
    for spec in RULES:
        config = config_from_mapping({spec.section: {"enabled": False, "severity": "LOW"}})
        assert not set(enabled_types(config)) & {k.name for k in spec.kinds}
    with pytest.raises(ConfigError, match=r"\[velocity\] has no key 'max_sale'"):
        config_from_mapping({"velocity": {"max_sale": 3}})
    with pytest.raises(ConfigError, match=r"\[velocity\] max_sales"):
        config_from_mapping({"velocity": {"max_sales": 0}})
    with pytest.raises(ConfigError, match="velocity"):  # named among the known sections
        config_from_mapping({"velocitys": {}})


def test_every_key_s_default_reads_back_as_the_default() -> None:
    """What ``posguard rules`` prints as a default is valid configuration with that value."""
    defaults = Config()
    for spec in RULES:
        rule = registry.settings(defaults, spec)
        for key, k in spec.keys.items():
            written = f"[{spec.section}]\n{key} = {toml_value(k.field, getattr(rule, k.field))}"
            parsed = config_from_mapping(tomllib.loads(written))
            assert getattr(registry.settings(parsed, spec), k.field) == getattr(rule, k.field)


def test_the_api_lists_every_type_with_its_settings() -> None:
    on = config_from_mapping(
        {"velocity": {"severity": "LOW"}, "refund_anomaly": {"enabled": False}}
    )
    rows = {row["type"]: row for row in describe_types(on)}
    assert list(rows) == list(ALERT_TYPES)
    assert rows["VELOCITY"]["severity"] == "LOW" and rows["REFUND_ANOMALY"]["enabled"] is False
    assert rows["MISSING_SETTLEMENT"]["money_at_stake"] is True
    assert rows["TERMINAL_FAULT"]["money_at_stake"] is False


def test_the_docs_list_every_type_and_key() -> None:
    text = rules_markdown(Config())
    for spec in RULES:
        for kind in spec.kinds:
            assert f"`{kind.name}` | `{kind.prefix}`" in text
        for key in spec.keys:
            assert f"`[{spec.section}] {key}`" in text


def test_the_readme_s_worked_example_is_the_rule_s_own_code() -> None:
    """README, "Writing a rule": its code blocks are copied from a real rule module, so the
    example cannot drift from what runs."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Writing a rule", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) >= 2
    module = re.search(r"worked example is\s+`(streams/rules/\w+\.py)`", section)
    assert module is not None
    source = (ROOT / module.group(1)).read_text()
    for block in blocks:
        for chunk in block.split("\n    ...\n"):
            assert chunk.strip() in source, chunk
    assert isinstance(RULES[-1], RuleSpec)
