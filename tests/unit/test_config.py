from fractions import Fraction
from pathlib import Path

import pytest

from streams.config import Config, ConfigError
from streams.configfile import config_from_mapping, load_config
from streams.money import expected_fee, format_amount, parse_rate
from streams.timefmt import format_us, parse_duration


def test_defaults_are_the_contracts() -> None:
    c = Config()
    assert c.duplicate_charge.window_us == 120 * 10**6
    assert c.missing_settlement.after_us == 26 * 3600 * 10**6
    assert c.unmatched_settlement.after_us == 3600 * 10**6
    assert c.feed_gap.gap_us == 30 * 3600 * 10**6
    assert c.feed_gap.hold_after_close_us == 2 * 3600 * 10**6
    assert (c.terminal_fault.min_attempts, c.terminal_fault.timeout_ratio) == (5, Fraction(1, 2))
    assert (c.velocity.max_sales, c.velocity.distinct_merchants) == (5, 3)
    assert c.fees.rate("M1", "CARD") == Fraction(6, 1000)
    assert c.fees.rate("M1", "QR") == Fraction(38, 10000)
    assert c.retention_us == 35 * 86400 * 10**6
    assert c.feed_gap.severity == "CRITICAL" and c.velocity.severity == "MEDIUM"


def test_toml_file_overrides(tmp_path: Path) -> None:
    path = tmp_path / "posguard.toml"
    path.write_text(
        """
[duplicate_charge]
window = "5m"
[terminal_fault]
min_attempts = 8
timeout_ratio = "60%"
[fees]
QR = "0.30%"
[fees.merchants.M9]
CARD = 0.0045
[velocity]
enabled = false
severity = "HIGH"
[retention]
evidence = "90d"
"""
    )
    c = load_config(path)
    assert c.duplicate_charge.window_us == 300 * 10**6
    assert c.terminal_fault.min_attempts == 8
    assert c.terminal_fault.timeout_ratio == Fraction(3, 5)
    assert c.fees.rate("M1", "QR") == Fraction(3, 1000)
    assert c.fees.rate("M9", "CARD") == Fraction(45, 10000)
    assert c.fees.rate("M9", "QR") == Fraction(3, 1000)
    assert not c.velocity.enabled and c.velocity.severity == "HIGH"
    assert c.retention_us == 90 * 86400 * 10**6


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"duplicate_charge": {"windw": "1m"}}, "no key 'windw'"),
        ({"velocity": {"max_sales": 0}}, "positive integer"),
        ({"velocity": {"severity": "URGENT"}}, "CRITICAL"),
        ({"fees": {"NFC": "1%"}}, "no channel 'NFC'"),
        ({"fees": {"CARD": "abc"}}, "rate"),
        ({"gaps": {}}, "unknown section [gaps]"),
        ({"missing_settlement": {"after": "soon"}}, "duration"),
    ],
)
def test_mistakes_are_refused_with_the_key(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config_from_mapping(doc)


def test_unreadable_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[x\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_money_is_integer_arithmetic() -> None:
    assert expected_fee(10_000, parse_rate("0.60%")) == 60
    assert expected_fee(250, parse_rate("0.38%")) == 1  # 0.95 rounds half up
    assert expected_fee(125, parse_rate("0.40%")) == 1  # exactly 0.5 rounds up
    assert expected_fee(10**18, parse_rate("0.60%")) == 6 * 10**15
    assert format_amount(1234567, "CNY") == "12,345.67 CNY"
    assert format_amount(1234567, "JPY") == "1,234,567 JPY"
    assert format_amount(1234567, "KWD") == "1,234.567 KWD"
    assert format_amount(-5, "USD") == "-0.05 USD"


def test_durations_and_time_text() -> None:
    assert parse_duration("120s") == parse_duration(120) == 120 * 10**6
    assert parse_duration("26h") == 26 * 3600 * 10**6
    assert format_us(0) == "1970-01-01T00:00:00Z"
    assert format_us(1_500_000, 8 * 3600) == "1970-01-01T08:00:01.500000+08:00"
