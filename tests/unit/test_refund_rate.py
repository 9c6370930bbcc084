"""REFUND_RATE, the registry's worked example: a merchant refunding too large a share of its
sales within a window. Off by default; on, it is raised, resolved, reopened and bounded like the
ledger's own rules, and replay of files gives it too."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from streams.alerts import Alert
from streams.config import Config, ConfigError
from streams.configfile import config_from_mapping
from streams.decode import EventDecoder
from streams.events import Event
from streams.replay import replay
from streams.rules.registry import describe_types, enabled_types
from streams.stake import Stake, money_at_stake
from tests.builders import HOUR, MIN, line_doc, run, txn, txn_doc

ON = config_from_mapping({"refund_rate": {"enabled": True, "min_refunds": 3, "max_share": "50%"}})


def _sales(n: int, start: float, merchant: str = "M1") -> list[Event]:
    return [txn(f"S{start}-{i}", start + i * MIN, merchant=merchant, card=f"c{i}",
                amount=1_000 + i) for i in range(n)]  # fmt: skip


def _refunds(n: int, start: float, merchant: str = "M1") -> list[Event]:
    return [txn(f"R{start}-{i}", start + i * MIN, merchant=merchant, type="REFUND",
                original="NOPE", amount=2_000, card=f"r{i}") for i in range(n)]  # fmt: skip


def test_off_by_default() -> None:
    assert "REFUND_RATE" not in run(*_sales(2, 0), *_refunds(5, HOUR)).types()


def test_raised_when_refunds_reach_the_share_of_sales_and_carries_the_money() -> None:
    r = run(*_sales(4, 0), *_refunds(3, HOUR), config=ON)
    alert = r.one("REFUND_RATE")
    assert alert.status == "OPEN" and alert.alert_id.startswith("RR-")
    assert alert.merchant_id == "M1" and len(alert.txn_ids) == 3
    assert alert.details["refunds"] == 3 and alert.details["sales"] == 4
    assert money_at_stake(alert) == Stake("CNY", 6_000, "refunded")


def test_too_few_refunds_or_too_small_a_share_raise_nothing() -> None:
    assert "REFUND_RATE" not in run(*_sales(1, 0), *_refunds(2, HOUR), config=ON).types()
    assert "REFUND_RATE" not in run(*_sales(7, 0), *_refunds(3, HOUR), config=ON).types()


def test_resolved_when_sales_dilute_the_share_and_reopened_within_a_window() -> None:
    r = run(*_sales(2, 0), *_refunds(3, HOUR), *_sales(10, 2 * HOUR),
            *_refunds(6, 3 * HOUR), config=ON)  # fmt: skip
    versions = [a.status for a in r.events if a.type == "REFUND_RATE"]
    assert versions[:2] == ["OPEN", "RESOLVED"] and versions[-1] == "OPEN"
    assert len({a.alert_id for a in r.events if a.type == "REFUND_RATE"}) == 1


def test_a_voided_refund_does_not_count_and_a_later_void_resolves() -> None:
    sales, refunds = _sales(4, 0), _refunds(3, HOUR)
    void = txn("V1", HOUR + 90, type="VOID", original=f"R{HOUR}-0")
    assert "REFUND_RATE" not in run(*sales, *refunds[:2], void, refunds[2], config=ON).types()
    later = txn("V2", HOUR + 10 * MIN, type="VOID", original=f"R{HOUR}-0")
    r = run(*sales, *refunds, later, config=ON)
    assert [a.status for a in r.events if a.type == "REFUND_RATE"] == ["OPEN", "RESOLVED"]


def test_refunds_outside_the_window_are_forgotten() -> None:
    late = 2 * 24 * HOUR
    r = run(*_refunds(2, 0), *_sales(2, HOUR), *_refunds(2, late), config=ON)
    assert "REFUND_RATE" not in r.types()


def test_merchants_are_counted_apart() -> None:
    r = run(*_refunds(2, 0, "M1"), *_refunds(2, 0, "M2"), config=ON)
    assert "REFUND_RATE" not in r.types()


def test_replay_of_files_gives_the_engine_s_alert(tmp_path: Path) -> None:
    docs = [txn_doc(f"S{i}", i * MIN, card=f"c{i}", amount=1_000 + i) for i in range(2)]
    docs += [txn_doc(f"R{i}", HOUR + i * MIN, type="REFUND", original=f"S{i % 2}", amount=100,
                     card=f"r{i}") for i in range(3)]  # fmt: skip
    (tmp_path / "t.jsonl").write_bytes(b"\n".join(msgspec.json.encode(d) for d in docs))
    (tmp_path / "s.jsonl").write_bytes(msgspec.json.encode(line_doc("L0", "S0", HOUR)))
    got: list[Alert] = []
    replay(tmp_path / "t.jsonl", tmp_path / "s.jsonl", ON, got.append, lambda d: None)
    decode = EventDecoder("transaction").decode
    direct = run(*(decode(msgspec.json.encode(d)) for d in docs), config=ON)
    assert [a for a in got if a.type == "REFUND_RATE"] == [
        a for a in direct.events if a.type == "REFUND_RATE"
    ]
    assert direct.one("REFUND_RATE").status == "OPEN"


def test_its_section_is_validated_and_its_type_listed() -> None:
    with pytest.raises(ConfigError, match=r"\[refund_rate\] has no key 'max_shares'"):
        config_from_mapping({"refund_rate": {"max_shares": "10%"}})
    with pytest.raises(ConfigError, match=r"\[refund_rate\] min_refunds"):
        config_from_mapping({"refund_rate": {"min_refunds": 0}})
    assert "REFUND_RATE" not in enabled_types(Config())
    assert "REFUND_RATE" in enabled_types(ON)
    row = next(r for r in describe_types(ON) if r["type"] == "REFUND_RATE")
    assert row["prefix"] == "RR" and row["money_at_stake"] is True and row["enabled"] is True
