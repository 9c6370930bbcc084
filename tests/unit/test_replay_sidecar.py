"""The replay sidecar (``streams.replay_sidecar``) without a model: terminal health and card
velocity in a second process give the output the engine gives alone. (With a model:
``tests/model/test_replay_sidecar.py``; on generated input: ``test_properties``.)"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from streams.alerts import Alert
from streams.config import load_config
from streams.deadletter import DeadLetter
from streams.replay import ReplayReport, replay
from streams.replay_sidecar import merge_alerts
from streams.simulate import SimulationSettings, write_simulation


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("sidecar")
    write_simulation(data, SimulationSettings(seed=21, days=4, merchants=25))
    return data


def _run(data: Path, parallel: bool) -> tuple[list[Alert], list[DeadLetter], ReplayReport]:
    alerts: list[Alert] = []
    dead: list[DeadLetter] = []
    report = replay(
        data / "transactions.jsonl",
        data / "settlements.jsonl",
        load_config(data / "config.toml"),
        alerts.append,
        dead.append,
        parallel=parallel,
    )
    return alerts, dead, report


def test_terminal_health_and_velocity_in_the_sidecar_change_nothing(simulated: Path) -> None:
    inline = _run(simulated, parallel=False)
    parallel = _run(simulated, parallel=True)
    kinds = {a.type for a in inline[0]}
    assert {"TERMINAL_FAULT", "VELOCITY"} <= kinds, kinds
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
