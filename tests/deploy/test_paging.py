"""Paging end to end: the real Prometheus and Alertmanager (Debian packages) scrape a worker fed
with a stalled settlement feed that also has open missing settlements.

The shipped rules, scrape job and routing are used as they are; only what a test cannot wait for
is changed: targets point at this machine, the scrape/evaluation interval is 1 s, and every
``for:`` / ``group_wait`` / ``group_interval`` / ``repeat_interval`` is divided by 30 (order kept,
so the feed gap still fires long before the missing settlements it inhibits). A local webhook
receiver stands in for the pager and the ops channel.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.cardmask import is_card_number
from streams.embedded_broker import free_port, stop_process, wait_for_port
from streams.simulate import SimulationSettings, write_simulation
from tests.support.brokers import tansu
from tests.support.stream import wait_until
from tests.support.tools import require
from tests.support.worker import WorkerProcess, produce_dir, unique_topics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SPEED_UP = 30
FEED_STOPS = datetime.fromisoformat("2026-03-06T00:00:00+00:00")
"""The simulated acquirer sends nothing settled from here on; transactions run two more days."""


def feed_gap_scenario(directory: Path) -> Path:
    """Six simulated days whose settlement feed stops after the fourth: the engine ends with an
    open SETTLEMENT_FEED_GAP and the MISSING_SETTLEMENT alerts judged before the feed stopped."""
    full = directory / "full"
    write_simulation(full, SimulationSettings(seed=7, days=6, merchants=10, start="2026-03-02"))
    kept = []
    for line in (full / "settlements.jsonl").read_text().splitlines():
        try:
            settled_at = datetime.fromisoformat(json.loads(line)["settled_at"])
        except (ValueError, KeyError, TypeError):
            continue
        if settled_at < FEED_STOPS:
            kept.append(line)
    (directory / "settlements.jsonl").write_text("\n".join(kept) + "\n")
    for name in ("transactions.jsonl", "config.toml"):
        (directory / name).write_bytes((full / name).read_bytes())
    return directory


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", duration))


def _faster(duration: str) -> str:
    return f"{max(1, _seconds(duration) // SPEED_UP)}s"


def prometheus_config(directory: Path, worker_port: int, alertmanager_port: int) -> Path:
    rules = yaml.safe_load((DEPLOY / "prometheus/rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = _faster(rule["for"])
    (directory / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["alerting"]["alertmanagers"][0]["static_configs"] = [
        {"targets": [f"127.0.0.1:{alertmanager_port}"]}
    ]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{worker_port}"]}]
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def alertmanager_config(directory: Path, receiver_port: int) -> Path:
    config = yaml.safe_load((DEPLOY / "alertmanager/alertmanager.yml").read_text())
    routes = [config["route"], *config["route"].get("routes", [])]
    for route in routes:
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in route:
                route[key] = _faster(route[key])
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"http://127.0.0.1:{receiver_port}/{receiver['name']}"
    path = directory / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Receiver:
    """Records every webhook notification: (receiver path, body)."""

    def __init__(self) -> None:
        self.notifications: list[tuple[str, dict[str, Any], str]] = []
        received = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                received.append((self.path.strip("/"), json.loads(raw), raw))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def alertnames(self, receiver: str) -> list[str]:
        return [
            alert["labels"]["alertname"]
            for path, body, _ in self.notifications
            if path == receiver
            for alert in body["alerts"]
        ]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture
def gap_worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    data = feed_gap_scenario(tmp_path / "scenario")
    with tansu() as url:
        topics = unique_topics()
        worker = WorkerProcess(
            url, topics, tmp_path / "state", f"paging-{uuid.uuid4().hex[:8]}",
            config=data / "config.toml",
        ).start()  # fmt: skip
        try:
            produce_dir(url, topics, data)

            def settled_into_a_gap() -> bool:
                open_gaps = worker.get("/api/alerts?status=OPEN&type=SETTLEMENT_FEED_GAP")
                missing = worker.get("/api/alerts?status=OPEN&type=MISSING_SETTLEMENT")
                return bool(open_gaps["total"] == 1 and missing["total"] >= 1)

            assert wait_until(settled_into_a_gap, 90), "the worker never saw the feed gap"
            yield worker
        finally:
            worker.stop()


def _run(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def test_a_stalled_feed_pages_once_and_inhibits_the_missing_settlements(
    gap_worker: WorkerProcess, tmp_path: Path
) -> None:
    prometheus = require("prometheus")
    alertmanager = require("prometheus-alertmanager")
    am_port, prom_port = free_port(), free_port()
    with Receiver() as receiver:
        am = _run(
            [
                alertmanager,
                f"--config.file={alertmanager_config(tmp_path, receiver.port)}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            tmp_path / "alertmanager.log",
        )
        prom = _run(
            [
                prometheus,
                f"--config.file={prometheus_config(tmp_path, gap_worker.port, am_port)}",
                f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            tmp_path / "prometheus.log",
        )
        try:
            wait_for_port(am_port, 30, am)
            wait_for_port(prom_port, 30, prom)

            assert wait_until(lambda: bool(receiver.alertnames("pager")), 60), "no page arrived"

            def missing_settlements_inhibited() -> bool:
                alerts = _get(f"http://127.0.0.1:{am_port}/api/v2/alerts")
                return any(
                    a["labels"]["alertname"] == "PosguardMissingSettlements"
                    and a["status"]["state"] == "suppressed"
                    and a["status"]["inhibitedBy"]
                    for a in alerts
                )

            assert wait_until(missing_settlements_inhibited, 60), (
                "PosguardMissingSettlements never reached Alertmanager as inhibited"
            )
            firing = _get(f"http://127.0.0.1:{prom_port}/api/v1/alerts")["data"]["alerts"]
            assert {"PosguardSettlementFeedGap", "PosguardMissingSettlements"} <= {
                a["labels"]["alertname"] for a in firing if a["state"] == "firing"
            }
            # Longer than the (scaled) group wait and interval of both routes: anything that
            # would be sent has been sent.
            time.sleep(12)
        finally:
            stop_process(prom, 10)
            stop_process(am, 10)

    assert receiver.alertnames("pager") == ["PosguardSettlementFeedGap"]
    (page,) = [body for path, body, _ in receiver.notifications if path == "pager"]
    assert page["status"] == "firing"
    assert page["commonLabels"]["severity"] == "critical"
    assert page["commonAnnotations"]["summary"].startswith("Settlement feed gap:")
    assert "behind the transactions" in page["commonAnnotations"]["summary"]
    assert "PosguardMissingSettlements" not in receiver.alertnames("ops-channel")
    assert "PosguardMoneyAtRisk" not in receiver.alertnames("ops-channel")
    for _, _, raw in receiver.notifications:
        for digits in re.findall(r"\d{13,19}", raw):
            assert not is_card_number(digits), "a card number reached a notification"
