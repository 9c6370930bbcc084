"""The replay sidecar (``streams.replay_sidecar``) without a model: terminal health, card velocity
and duplicate charges in a second process give the output the engine gives alone. (With a model:
``tests/model/test_replay_sidecar.py``; on generated input: ``test_properties``.)"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from streams.alerts import Alert
from streams.config import Config
from streams.configfile import load_config
from streams.deadletter import DeadLetter
from streams.filereader import ReplayReport
from streams.replay import replay
from streams.replay_sidecar import merge_alerts
from streams.simulate import SimulationSettings, write_simulation
from tests.builders import txn_doc


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("sidecar")
    write_simulation(data, SimulationSettings(seed=21, days=4, merchants=25))
    return data


def _run(
    data: Path, parallel: bool, config: Config | None = None
) -> tuple[list[Alert], list[DeadLetter], ReplayReport]:
    alerts: list[Alert] = []
    dead: list[DeadLetter] = []
    report = replay(
        data / "transactions.jsonl",
        data / "settlements.jsonl",
        config or load_config(data / "config.toml"),
        alerts.append,
        dead.append,
        parallel=parallel,
    )
    return alerts, dead, report


def test_the_rules_in_the_sidecar_change_nothing(simulated: Path) -> None:
    inline = _run(simulated, parallel=False)
    parallel = _run(simulated, parallel=True)
    kinds = {a.type for a in inline[0]}
    assert {"TERMINAL_FAULT", "VELOCITY", "DUPLICATE_CHARGE"} <= kinds, kinds
    assert len(kinds) > 2, "the sidecar's alerts must interleave with the engine's"
    assert parallel[0] == inline[0]
    assert parallel[1] == inline[1]
    assert parallel[2].alert_events == inline[2].alert_events
    assert parallel[2].final_status == inline[2].final_status
    assert parallel[2].transactions == inline[2].transactions


def _alert(name: str) -> Alert:
    return msgspec.convert(
        {
            "alert_id": name,
            "type": "VELOCITY",
            "severity": "MEDIUM",
            "status": "OPEN",
            "merchant_id": "M1",
            "terminal_id": None,
            "txn_ids": [],
            "settlement_ids": [],
            "event_time": "2026-03-01T00:00:00.000Z",
            "summary": name,
            "details": {},
        },
        Alert,
    )


def test_sidecar_alerts_go_before_the_engine_alert_at_their_place() -> None:
    engine = [_alert(n) for n in ("e0", "e1", "e2")]
    placed = [(0, _alert("s0")), (2, _alert("s2a")), (2, _alert("s2b")), (3, _alert("s3"))]
    merged = merge_alerts(engine, placed)
    assert [a.alert_id for a in merged] == ["s0", "e0", "e1", "s2a", "s2b", "e2", "s3"]
    assert merge_alerts(engine, []) == engine


def test_duplicate_charges_and_their_cancellations_in_the_sidecar(tmp_path: Path) -> None:
    """Clusters that grow, a copy voided at once, a copy voided hours later (after several
    sweeps of the sidecar's sale index), a VOID that arrives before its sale, a REVERSAL of a
    refund (no cluster) and a sale that was never charged twice: the same alert events, in the
    same order, as the engine alone."""
    hour = 3600
    docs = [
        txn_doc("A1", 0, card="tok_a"),
        txn_doc("A2", 60, card="tok_a"),  # a duplicate of A1
        txn_doc("A3", 90, card="tok_a"),  # the cluster grows
        txn_doc("V1", 120, type="VOID", original="A2"),  # voided at once: A1 and A3 stand
        txn_doc("B1", 200, card="tok_b", amount=500),
        txn_doc("B2", 230, card="tok_b", amount=500),
        txn_doc("C0", 400, card="tok_c", amount=700),
        txn_doc("V2", 500, type="VOID", original="C2"),  # its sale comes next
        txn_doc("C2", 520, card="tok_c", amount=700),
        txn_doc("R1", 600, card="tok_b", type="REFUND", amount=500, original="B1"),
        txn_doc("V3", 650, type="REVERSAL", original="R1"),  # a refund: in no cluster
        txn_doc("D1", 900, card="tok_d"),  # charged once
        *[txn_doc(f"F{i}", 1000 + i * 600, card=f"tok_f{i}") for i in range(30)],  # 5 hours
        txn_doc("V4", 4 * hour, type="VOID", original="B2"),  # resolves B's cluster late
        txn_doc("A4", 4 * hour + 10, card="tok_a"),  # no longer within A's window
    ]
    (tmp_path / "transactions.jsonl").write_bytes(
        b"".join(
            msgspec.json.encode(d) + b"\n" for d in sorted(docs, key=lambda d: d["event_time"])
        )
    )
    (tmp_path / "settlements.jsonl").write_bytes(b"")
    inline = _run(tmp_path, parallel=False, config=Config())
    parallel = _run(tmp_path, parallel=True, config=Config())
    duplicates = [(a.status, a.txn_ids) for a in inline[0] if a.type == "DUPLICATE_CHARGE"]
    assert duplicates == [
        ("OPEN", ["A1", "A2"]),  # each event keeps the members it was emitted with
        ("OPEN", ["A1", "A2", "A3"]),
        ("OPEN", ["B1", "B2"]),
        ("RESOLVED", ["B1", "B2"]),
    ]
    assert parallel[0] == inline[0]
    assert parallel[1] == inline[1]
    assert parallel[2].alert_events == inline[2].alert_events
