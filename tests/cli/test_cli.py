"""The console script as users run it: in a subprocess, with files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from tests.builders import HOUR, line_doc, txn_doc

POSGUARD = Path(sys.executable).parent / "posguard"


def posguard(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(POSGUARD), *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "error::DeprecationWarning:streams", **(env or {})},
    )


def replay_cli(txns: Path, lines: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return posguard("replay", "--transactions", str(txns), "--settlements", str(lines), *extra)


def write_jsonl(path: Path, rows: list[object]) -> Path:
    lines = [r if isinstance(r, bytes) else msgspec.json.encode(r) for r in rows]
    path.write_bytes(b"\n".join(lines) + b"\n\n")
    return path


@pytest.fixture
def scenario(tmp_path: Path) -> tuple[Path, Path]:
    txns = write_jsonl(
        tmp_path / "t.jsonl",
        [
            txn_doc("A", 0),
            txn_doc("B", 60),  # duplicate of A
            txn_doc("C", 120, card="tok_c", amount=500),
            b"{broken",
            txn_doc("P", 130, card="4111111111111111"),
            txn_doc("D", 60 * HOUR, card="tok_d", note="card 4000056655665556"),
        ],
    )
    lines = write_jsonl(
        tmp_path / "s.jsonl",
        [line_doc("SA", "A", HOUR), line_doc("SB", "B", HOUR), line_doc("SX", "B", 27 * HOUR)],
    )
    return txns, lines


def test_replay_writes_alerts_dead_letters_and_a_summary(
    scenario: tuple[Path, Path], tmp_path: Path
) -> None:
    txns, lines = scenario
    out, dead = tmp_path / "alerts.jsonl", tmp_path / "dead.jsonl"
    done = replay_cli(
        txns,
        lines,
        "--out",
        str(out),
        "--dead-letter",
        str(dead),
    )
    assert done.returncode == 0, done.stderr
    alerts = [json.loads(x) for x in out.read_text().splitlines()]
    types = sorted({a["type"] for a in alerts})
    assert types == [
        "DUPLICATE_CHARGE",
        "DUPLICATE_SETTLEMENT",
        "MISSING_SETTLEMENT",
        "SETTLEMENT_FEED_GAP",
    ]
    for alert in alerts:
        assert set(alert) >= {
            "alert_id",
            "type",
            "severity",
            "status",
            "merchant_id",
            "terminal_id",
            "txn_ids",
            "settlement_ids",
            "event_time",
            "detected_at",
            "summary",
            "details",
        }
        assert alert["detected_at"].endswith("Z")
    letters = [json.loads(x) for x in dead.read_text().splitlines()]
    assert sorted(x["reason"] for x in letters) == ["CARD_NUMBER", "INVALID_JSON"]
    pan_letter = next(x for x in letters if x["reason"] == "CARD_NUMBER")
    assert pan_letter["source"] == {"file": str(txns), "line": 5}
    assert "411111******1111" in pan_letter["raw"]
    everything = out.read_text() + dead.read_text() + done.stderr + done.stdout
    assert "4111111111111111" not in everything and "4000056655665556" not in everything
    assert "dead letters: 2" in done.stderr
    assert "DUPLICATE_CHARGE" in done.stderr
    # C (5.00) and D (100.00) never settled; A and B did.
    assert "awaiting settlement at the end of input: 2 transactions (105.00 CNY)" in done.stderr


def test_replay_to_stdout_and_dead_letters_to_stderr(scenario: tuple[Path, Path]) -> None:
    txns, lines = scenario
    done = replay_cli(txns, lines)
    assert done.returncode == 0
    assert all(json.loads(x)["alert_id"] for x in done.stdout.splitlines())
    assert '"reason":"INVALID_JSON"' in done.stderr
    assert "--dead-letter" in done.stderr


def test_replay_is_deterministic_but_for_detected_at(scenario: tuple[Path, Path]) -> None:
    txns, lines = scenario
    runs = [replay_cli(txns, lines).stdout for _ in range(2)]
    strip = [
        [{k: v for k, v in json.loads(x).items() if k != "detected_at"} for x in out.splitlines()]
        for out in runs
    ]
    assert strip[0] == strip[1] and strip[0]


def test_a_file_is_taken_in_file_order_unless_sorting_is_asked_for(tmp_path: Path) -> None:
    # One sale settles before its line's batch; the other's line arrives an hour and a half
    # after it was settled. Sorted, the line finds its sale; in file order it waited too long.
    txns = write_jsonl(
        tmp_path / "t.jsonl",
        [
            txn_doc("A", 0),
            txn_doc("C", 3 * 3600, card="tok_c"),
            txn_doc("D", 3 * 3600 + 1, card="tok_d"),
            txn_doc("B", 60, card="tok_b"),
        ],
    )
    lines = write_jsonl(tmp_path / "s.jsonl", [line_doc("S1", "B", 3600)])
    as_arrived = replay_cli(txns, lines)
    assert as_arrived.returncode == 0
    assert "1 events of" in as_arrived.stderr and "taken in file order" in as_arrived.stderr
    alerts = [json.loads(x) for x in as_arrived.stdout.splitlines()]
    assert [(a["type"], a["status"]) for a in alerts] == [
        ("UNMATCHED_SETTLEMENT", "OPEN"),
        ("UNMATCHED_SETTLEMENT", "RESOLVED"),
    ]
    ordered = replay_cli(txns, lines, "--sort-by-event-time")
    assert ordered.returncode == 0 and ordered.stdout == ""
    assert "sorted by event time before replay, as asked" in ordered.stderr


def test_usage_errors_exit_2(tmp_path: Path, scenario: tuple[Path, Path]) -> None:
    txns, lines = scenario
    missing = posguard(
        "replay", "--transactions", str(tmp_path / "nope"), "--settlements", str(lines)
    )
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert posguard("replay", "--transactions", str(txns)).returncode == 2
    assert posguard("frobnicate").returncode == 2
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[velocity]\nmax_sale = 3\n")
    done = replay_cli(
        txns,
        lines,
        "--config",
        str(bad_config),
    )
    assert done.returncode == 2 and "max_sale" in done.stderr


def test_version_is_the_installed_distribution_s() -> None:
    from importlib.metadata import version

    done = posguard("--version")
    assert done.returncode == 0
    assert done.stdout.startswith(f"posguard {version('posguard')} (")
    if os.environ.get("POSGUARD_PURE_PYTHON") == "1":
        assert "(pure Python)" in done.stdout
    else:
        assert "mypyc-compiled detection path" in done.stdout and "older than" not in done.stdout


def test_config_changes_detection(scenario: tuple[Path, Path], tmp_path: Path) -> None:
    txns, lines = scenario
    config = tmp_path / "c.toml"
    config.write_text('[duplicate_charge]\nenabled = false\n[feed_gap]\ngap = "40h"\n')
    done = replay_cli(txns, lines, "--config", str(config))
    types = {json.loads(x)["type"] for x in done.stdout.splitlines()}
    assert "DUPLICATE_CHARGE" not in types and "SETTLEMENT_FEED_GAP" not in types


def test_simulate_then_evaluate(tmp_path: Path) -> None:
    data = tmp_path / "sim"
    done = posguard(
        "simulate",
        "--out-dir",
        str(data),
        "--seed",
        "3",
        "--merchants",
        "12",
        "--sales-per-terminal-day",
        "15",
    )
    assert done.returncode == 0, done.stderr
    assert {p.name for p in data.iterdir()} >= {
        "transactions.jsonl",
        "settlements.jsonl",
        "labels.jsonl",
        "config.toml",
        "manifest.json",
    }
    report = posguard("evaluate", "--data", str(data), "--json")
    assert report.returncode == 0, report.stderr
    result = json.loads(report.stdout)
    assert all(t["recall"] == 1.0 and t["false_positives"] == 0 for t in result["types"])
    text = posguard("evaluate", "--data", str(data))
    assert "result: PERFECT" in text.stdout
    assert posguard("evaluate", "--data", str(tmp_path)).returncode == 2


def test_train_model_info_and_replay_with_a_model(tmp_path: Path) -> None:
    data = tmp_path / "sim"
    sim = posguard("simulate", "--out-dir", str(data), "--seed", "5", "--merchants", "15")
    assert sim.returncode == 0, sim.stderr
    model = tmp_path / "model.npz"
    train = posguard(
        "train",
        "--transactions",
        str(data / "transactions.jsonl"),
        "--out",
        str(model),
        "--target-alert-rate",
        "0.5",
    )
    assert train.returncode == 0, train.stderr
    assert "threshold" in train.stderr and "0.5% of approved sales" in train.stderr
    info = posguard("model", "info", str(model), "--json")
    assert info.returncode == 0, info.stderr
    meta = json.loads(info.stdout)
    assert meta["target_alert_rate"] == 0.005
    assert meta["training_window"]["from"] < meta["training_window"]["to"]
    assert meta["sklearn_version"] and len(meta["checksum"]) == 64
    out = tmp_path / "alerts.jsonl"
    run = replay_cli(
        data / "transactions.jsonl",
        data / "settlements.jsonl",
        "--model",
        str(model),
        "--out",
        str(out),
        "--dead-letter",
        str(tmp_path / "dead.jsonl"),
    )
    assert run.returncode == 0, run.stderr
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    suspicious = [a for a in alerts if a["type"] == "SUSPICIOUS_PATTERN"]
    assert suspicious and all(
        a["details"]["model_version"] == meta["model_version"] for a in suspicious
    )
    plain = tmp_path / "plain.jsonl"
    run = replay_cli(
        data / "transactions.jsonl",
        data / "settlements.jsonl",
        "--out",
        str(plain),
        "--dead-letter",
        str(tmp_path / "dead2.jsonl"),
    )
    assert "SUSPICIOUS_PATTERN" not in plain.read_text()
    rules = [a for a in alerts if a["type"] != "SUSPICIOUS_PATTERN"]
    assert [a["alert_id"] for a in rules] == [
        json.loads(line)["alert_id"] for line in plain.read_text().splitlines()
    ]


def test_a_damaged_model_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"PK\x03\x04 not really")
    result = posguard("model", "info", str(bad))
    assert result.returncode == 2
    assert "not a posguard model file" in result.stderr
    txns = write_jsonl(tmp_path / "t.jsonl", [txn_doc("T1")])
    lines = write_jsonl(tmp_path / "s.jsonl", [])
    result = replay_cli(txns, lines, "--model", str(bad))
    assert result.returncode == 2 and "not a posguard model file" in result.stderr
