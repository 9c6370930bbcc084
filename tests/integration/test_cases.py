"""Cases end to end on a real broker: operators' actions through the API, published as updates
of the alert, their verdicts sent as feedback, precision and overdue on /metrics, bulk actions,
CSV export, and every case still there after the worker is replaced."""

from __future__ import annotations

import csv
import io
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from streams.worker.settings import bootstrap_servers
from tests.support.brokers import tansu
from tests.support.stream import Expected, decode_all, wait_until
from tests.support.worker import WorkerProcess, produce_dir, read_topic, unique_topics

pytestmark = pytest.mark.integration


def _first(worker: WorkerProcess, kind: str) -> dict[str, Any]:
    page = worker.get(f"/api/alerts?type={kind}&limit=1")
    assert page["alerts"], f"the simulated run has a {kind} alert"
    alert: dict[str, Any] = page["alerts"][0]
    return alert


def _send_one(url: str, topic: str, value: bytes) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers(url))
    try:
        producer.send(topic, key=b"M0000", value=value).get(timeout=30)
    finally:
        producer.close()


def test_cases_round_trip_feed_the_model_and_survive_a_new_worker(
    simulated: tuple[Path, Expected], tmp_path: Path
) -> None:
    data, expected = simulated
    config = tmp_path / "config.toml"
    # MEDIUM cases are overdue a second after they open; HIGH ones never in this test.
    config.write_text(
        (data / "config.toml").read_text() + '\n[cases.sla]\nMEDIUM = "1s"\nHIGH = "30d"\n'
    )
    model = tmp_path / "model.npz"
    shutil.copy(data / "model.npz", model)
    state = tmp_path / "state"
    state.mkdir()
    with tansu() as url:
        topics = unique_topics()
        group = f"cases-{uuid.uuid4().hex[:6]}"
        worker = WorkerProcess(url, topics, state, group, config=config, model=model).start()
        try:
            produce_dir(url, topics, data)
            assert wait_until(
                lambda: worker.get("/api/alerts?limit=1")["total"] == len(expected.final), 60
            )
            pattern, velocity = _first(worker, "SUSPICIOUS_PATTERN"), _first(worker, "VELOCITY")
            assert pattern["case"]["state"] == "NEW" and pattern["case"]["sla_due"]

            # One case worked through: acknowledge, comment, close as confirmed.
            sp = f"/api/alerts/{pattern['alert_id']}/case"
            status, body = worker.post(sp, {"action": "acknowledge", "by": "Ana"})
            assert status == 200 and body["case"]["state"] == "ACKNOWLEDGED", body
            status, body = worker.post(sp, {"action": "close", "by": "Ana"})
            assert status == 400 and "disposition" in body["error"]
            status, body = worker.post(
                sp,
                {"action": "close", "by": "Ana", "disposition": "CONFIRMED", "comment": "stolen"},
            )
            assert status == 200 and body["case"]["state"] == "CLOSED"
            assert body["status"] == pattern["status"], "status stays the system's judgment"
            assert [h["action"] for h in body["case"]["history"]] == ["acknowledge", "close"]
            status, body = worker.post(
                f"/api/alerts/{velocity['alert_id']}/case",
                {"action": "close", "by": "Bo", "disposition": "FALSE_POSITIVE"},
            )
            assert status == 200, body
            assert (
                worker.post("/api/alerts/XX-none/case", {"action": "comment", "by": "A"})[0] == 404
            )

            # Published as updates of the same alert id, with the case.
            def published_case(alert_id: str) -> dict[str, Any] | None:
                found = [
                    a
                    for a in decode_all(read_topic(url, topics.alerts))
                    if a["alert_id"] == alert_id
                ]
                return found[-1].get("case") if found else None

            assert wait_until(
                lambda: (published_case(pattern["alert_id"]) or {}).get("state") == "CLOSED", 20
            )

            # Verdicts reach the feedback topic, one outcome per sale, at the sale's merchant.
            def outcomes() -> list[dict[str, Any]]:
                return decode_all(read_topic(url, topics.feedback))

            want = len(pattern["txn_ids"]) + len(velocity["txn_ids"])
            assert wait_until(lambda: len(outcomes()) == want, 20), outcomes()
            by_txn = {o["txn_id"]: o for o in outcomes()}
            assert {by_txn[t]["kind"] for t in pattern["txn_ids"]} == {"FRAUD_CONFIRMED"}
            assert {by_txn[t]["kind"] for t in velocity["txn_ids"]} == {"LEGITIMATE"}
            assert {o["source"] for o in outcomes()} == {"OPERATOR"}
            sold_at = velocity["details"]["txn_merchants"]
            assert all(by_txn[t]["merchant_id"] == sold_at[t] for t in velocity["txn_ids"])
            # The worker reads them as input: nothing about them is dead-lettered.
            assert wait_until(lambda: worker.events_in() >= expected.events + want, 30)
            letters = decode_all(read_topic(url, topics.deadletter))
            assert not [d for d in letters if topics.feedback in str(d.get("source"))], letters

            # Bulk: every open MISSING_SETTLEMENT closed as a false positive.
            missing = worker.get("/api/alerts?type=MISSING_SETTLEMENT&status=OPEN&limit=1")
            status, body = worker.post(
                "/api/cases/bulk",
                {
                    "filter": {"type": "MISSING_SETTLEMENT", "status": "OPEN"},
                    "action": {"action": "close", "by": "Cy", "disposition": "FALSE_POSITIVE"},
                },
            )
            assert status == 200 and body["changed"] == missing["total"] > 0, body

            summary = worker.get("/api/cases")
            assert summary["precision"]["SUSPICIOUS_PATTERN"]["precision"] == 1.0
            assert summary["precision"]["VELOCITY"]["precision"] == 0.0
            assert summary["states"]["CLOSED"] == 2 + missing["total"]
            assert summary["overdue"].get("MEDIUM", 0) > 0 and "HIGH" not in summary["overdue"]

            def gauges_show_it() -> bool:
                text = worker.metrics()
                return (
                    'posguard_alert_precision{type="SUSPICIOUS_PATTERN"} 1.0' in text
                    and 'posguard_cases_overdue{severity="MEDIUM"} 0.0' not in text
                    and 'posguard_cases{state="CLOSED"}' in text
                )

            assert wait_until(gauges_show_it, 20)
            overdue = worker.get("/api/alerts?overdue=1&limit=500")["alerts"]
            assert overdue and all(a["severity"] == "MEDIUM" for a in overdue)
            assert all(a["case"]["overdue"] and a["status"] == "OPEN" for a in overdue)

            rows = list(csv.DictReader(io.StringIO(worker.text("/api/alerts.csv?case=CLOSED"))))
            assert len(rows) == 2 + missing["total"]
            assert {r["case_state"] for r in rows} == {"CLOSED"}
        finally:
            worker.stop()

        # Another worker, on another machine, takes over: the cases are rebuilt from the changelog.
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        second = WorkerProcess(url, topics, elsewhere, group, config=config, model=model).start()
        try:
            # A partition is rebuilt when its first message since the takeover arrives.
            _send_one(url, topics.transactions, b"not json: wakes the partition up")
            assert wait_until(
                lambda: second.get("/api/alerts?limit=1")["total"] >= len(expected.final), 90
            )

            def kept() -> bool:
                case = second.get(f"/api/alerts/{pattern['alert_id']}")["case"]
                return bool(case["state"] == "CLOSED" and case["comment"] == "stolen")

            assert wait_until(kept, 30)
            again = second.get(f"/api/alerts/{pattern['alert_id']}")
            assert [h["by"] for h in again["case"]["history"]] == ["Ana", "Ana"]
            assert second.get("/api/cases")["precision"]["VELOCITY"]["precision"] == 0.0
        finally:
            second.stop()
