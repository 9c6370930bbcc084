"""``posguard backtest`` as users run it: the table, the JSON Lines differences, the errors."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from streams.backtest import changed_fields
from tests.builders import line_doc, txn_doc
from tests.cli.test_cli import posguard, write_jsonl


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """Two duplicate pairs (20 s and 90 s apart) and a settled sale whose fee is 0.60 %."""
    txns = write_jsonl(
        tmp_path / "t.jsonl",
        [
            txn_doc("A1", 0, card="tok_a", amount=2_500),
            txn_doc("A2", 20, card="tok_a", amount=2_500),
            txn_doc("B1", 600, card="tok_b", amount=7_000),
            txn_doc("B2", 690, card="tok_b", amount=7_000),
            txn_doc("C", 900, card="tok_c", amount=10_000),
        ],
    )
    lines = write_jsonl(
        tmp_path / "s.jsonl",
        [line_doc(f"S{i}", t, 3600, gross=g) for i, (t, g) in enumerate(
            [("A1", 2_500), ("A2", 2_500), ("B1", 7_000), ("B2", 7_000), ("C", 10_000)]
        )],
    )  # fmt: skip
    return txns, lines


def backtest(files: tuple[Path, Path], proposed: Path, *extra: str) -> tuple[str, list[dict]]:  # type: ignore[type-arg]
    txns, lines = files
    out = proposed.parent / "diff.jsonl"
    done = posguard(
        "backtest",
        "--config",
        str(proposed),
        "--transactions",
        str(txns),
        "--settlements",
        str(lines),
        "--out",
        str(out),
        *extra,
    )
    assert done.returncode == 0, done.stderr
    diffs = [msgspec.json.decode(line) for line in out.read_bytes().splitlines() if line]
    return done.stdout, diffs


def test_the_same_configuration_changes_nothing(files: tuple[Path, Path], tmp_path: Path) -> None:
    same = tmp_path / "same.toml"
    same.write_text('[duplicate_charge]\nwindow = "120s"\n')
    table, diffs = backtest(files, same)
    assert diffs == []
    assert "no alert differs" in table
    assert "DUPLICATE_CHARGE                  2         2       0        0        0" in table


def test_a_narrower_window_removes_the_wider_duplicate_with_its_money(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    proposed = tmp_path / "narrow.toml"
    proposed.write_text('[duplicate_charge]\nwindow = "30s"\n')
    table, diffs = backtest(files, proposed)
    kinds = sorted((d["change"], d["type"], tuple(d["fields"])) for d in diffs)
    # A's pair stays, its details now saying the window is 30 s.
    assert kinds == [
        ("changed", "DUPLICATE_CHARGE", ("details.window_seconds",)),
        ("removed", "DUPLICATE_CHARGE", ()),
    ], kinds
    removed = next(d for d in diffs if d["change"] == "removed")
    assert removed["current"]["txn_ids"] == ["B1", "B2"] and removed["proposed"] is None
    assert removed["at_stake"]["amount"] == "70.00 CNY"
    assert "- / 70.00 CNY" in table and "2 alerts differ" in table


def test_a_lower_fee_rate_adds_amount_mismatches_and_a_severity_change_is_a_change(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    proposed = tmp_path / "fees.toml"
    proposed.write_text('[fees]\nCARD = "0.50%"\n\n[duplicate_charge]\nseverity = "CRITICAL"\n')
    _, diffs = backtest(files, proposed)
    added = [d for d in diffs if d["change"] == "added"]
    assert {d["type"] for d in added} == {"AMOUNT_MISMATCH"} and len(added) == 5
    assert all(
        d["proposed"]["details"]["expected_fee_minor"] < d["proposed"]["details"]["fee_minor"]
        for d in added
    )
    changed = [d for d in diffs if d["change"] == "changed"]
    assert {d["type"] for d in changed} == {"DUPLICATE_CHARGE"} and len(changed) == 2
    assert all(d["fields"] == ["severity"] for d in changed)


def test_a_bad_proposal_is_refused_with_its_key(files: tuple[Path, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[duplicate_charge]\nwindw = "30s"\n')
    txns, lines = files
    done = posguard(
        "backtest", "--config", str(bad), "--transactions", str(txns), "--settlements", str(lines)
    )
    assert done.returncode == 2 and "windw" in done.stderr


def test_changed_fields_name_details_keys() -> None:
    before = {"severity": "HIGH", "details": {"threshold": 0.5, "score": 0.7}, "summary": "x"}
    after = {"severity": "HIGH", "details": {"threshold": 0.6, "score": 0.7}, "summary": "y"}
    assert changed_fields(before, after) == ["details.threshold", "summary"]
