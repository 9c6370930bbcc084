"""Pay-outs on a real broker: a simulated fleet's pay-outs on ``pos.payouts`` (two partitions,
keyed by merchant like the other inputs), scored against the simulator's labels from what the
worker published; the money settled and not paid out, and the pay-out feed, on the API and
``/metrics``."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

from streams.alerts import Alert
from streams.evaluate import score_alerts
from streams.simulate import SimulationSettings, write_simulation
from tests.cli.test_cli import posguard
from tests.support.stream import decode_all, wait_until
from tests.support.worker import WorkerProcess, produce_dir, read_topic, topic_env, unique_topics

pytestmark = pytest.mark.integration

_KINDS = ["PAYOUT_MISSING", "PAYOUT_MISMATCH", "UNEXPLAINED_CREDIT"]


def _labels(data: Path) -> list[dict[str, Any]]:
    rows = [msgspec.json.decode(x) for x in (data / "labels.jsonl").read_bytes().splitlines()]
    return [x for x in rows if x["type"] in _KINDS]


def _history(values: list[dict[str, Any]]) -> dict[str, list[Alert]]:
    history: dict[str, list[Alert]] = {}
    for doc in values:
        if doc["type"] in _KINDS:
            alert = msgspec.convert({k: v for k, v in doc.items() if k != "case"}, Alert)
            history.setdefault(alert.alert_id, []).append(alert)
    return history


def _metric(worker: WorkerProcess, name: str) -> list[tuple[str, float]]:
    found = []
    for line in worker.metrics().splitlines():
        if line.startswith(name):
            key, value = line.rsplit(" ", 1)
            found.append((key, float(value)))
    return found


def test_every_payout_alert_is_found_on_the_stream(broker_url: str, tmp_path: Path) -> None:
    data = tmp_path / "sim"
    write_simulation(data, SimulationSettings(seed=13, days=5, merchants=12))
    labels = _labels(data)
    assert {x["type"] for x in labels} == set(_KINDS)
    topics = unique_topics()
    state = tmp_path / "state"
    state.mkdir()
    worker = WorkerProcess(
        broker_url, topics, state, f"payouts-{uuid.uuid4().hex[:8]}", partitions=2,
        config=data / "config.toml",
    ).start()  # fmt: skip
    scores: list[Any] = []

    def perfect() -> bool:
        published = decode_all(read_topic(broker_url, topics.alerts))
        scores[:] = score_alerts(_history(published), labels, _KINDS)[0]
        return all(
            s.found == s.expected and s.false_positives == 0 and s.noise == 0 for s in scores
        )

    try:
        produce_dir(broker_url, topics, data)
        assert wait_until(perfect, 120), (scores, worker.log_tail())
        fleet = worker.get("/api/merchants")
        never_paid = next(x for x in labels if x["scenario"] == "the batch was never paid")
        merchant = next(
            m for m in fleet["merchants"] if m["merchant_id"] == never_paid["merchant_id"]
        )
        assert merchant["unpaid_minor"], merchant
        assert fleet["unpaid"] and fleet["statements_late"] == []
        assert wait_until(lambda: bool(_metric(worker, "posguard_settled_not_paid_minor{")), 10)
        assert _metric(worker, "posguard_payout_feed_stalled ") == [
            ("posguard_payout_feed_stalled", 0.0)
        ]
        assert any(
            k == 'posguard_events_in_total{topic="' + topics.payouts + '"}' and v > 0
            for k, v in _metric(worker, "posguard_events_in_total{")
        )
    finally:
        worker.stop()


def test_import_statement_produces_to_the_payout_topic(broker_url: str) -> None:
    topics = unique_topics()
    statement = Path(__file__).parent.parent / "data" / "statements" / "mt940_two_statements.sta"
    env = {**topic_env(topics), "POSGUARD_BROKER_URL": broker_url}
    done = posguard("import-statement", str(statement), "--merchant", "M0042", "--kafka", env=env)
    assert done.returncode == 0, done.stderr
    assert f"5 pay-outs to {topics.payouts} on {broker_url}" in done.stderr
    values = [msgspec.json.decode(v) for v in read_topic(broker_url, topics.payouts)]
    assert [v["payout_id"] for v in values] == [
        "ACQ-20260304-0001",
        "CHG-202603-01",
        "ACQ-20260305-0002",
        "ACQ-20260305-0002R",
        "ACQ-JP-0001",
    ]
    assert {v["merchant_id"] for v in values} == {"M0042"}
