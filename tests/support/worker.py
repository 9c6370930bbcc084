"""A ``posguard worker`` in a subprocess, on its own topics and group, and topic readers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from streams.embedded_broker import free_port
from streams.simulate.produce import produce, rows_from_file
from streams.worker.settings import Topics, bootstrap_servers

ROOT = Path(__file__).resolve().parents[2]


def unique_topics() -> Topics:
    tag = uuid.uuid4().hex[:8]
    return Topics(
        transactions=f"t-{tag}.transactions",
        settlements=f"t-{tag}.settlements",
        feedback=f"t-{tag}.feedback",
        payouts=f"t-{tag}.payouts",
        alerts=f"t-{tag}.alerts",
        deadletter=f"t-{tag}.deadletter",
        config=f"t-{tag}.config",
    )


def topic_env(topics: Topics) -> dict[str, str]:
    return {
        "POSGUARD_TOPIC_TRANSACTIONS": topics.transactions,
        "POSGUARD_TOPIC_SETTLEMENTS": topics.settlements,
        "POSGUARD_TOPIC_FEEDBACK": topics.feedback,
        "POSGUARD_TOPIC_PAYOUTS": topics.payouts,
        "POSGUARD_TOPIC_ALERTS": topics.alerts,
        "POSGUARD_TOPIC_DEADLETTER": topics.deadletter,
        "POSGUARD_TOPIC_CONFIG": topics.config,
    }


@dataclass
class WorkerProcess:
    broker_url: str
    topics: Topics
    data_dir: Path
    group: str
    partitions: int = 1
    config: Path | None = None
    model: Path | None = None
    token: str | None = None
    port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    """More environment (Kafka security settings)."""
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self) -> WorkerProcess:
        self.port = self.port or free_port()
        env = {
            **os.environ,
            **topic_env(self.topics),
            "POSGUARD_BROKER_URL": self.broker_url,
            "POSGUARD_WEB_PORT": str(self.port),
            "POSGUARD_DATA_DIR": str(self.data_dir),
            "POSGUARD_GROUP": self.group,
            "POSGUARD_PARTITIONS": str(self.partitions),
            "POSGUARD_CONFIG": str(self.config or ""),
            "POSGUARD_MODEL": str(self.model or ""),
            "POSGUARD_TOKEN": self.token or "",
            **self.env,
        }
        self.log = self.data_dir.parent / f"worker-{self.group}-{time.time_ns()}.log"
        log = self.log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready()
        return self

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}")
            try:
                self.get("/healthz")
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("worker did not answer /healthz in time")

    def get(self, path: str) -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=5) as r:
            return json.loads(r.read())

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        """POST ``body`` as JSON: the status and the decoded answer (errors included)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def text(self, path: str) -> str:
        """A page as text (CSV export)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=10) as r:
            return str(r.read().decode())

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text: str = r.read().decode()
            return text

    def events_in(self) -> int:
        """Input messages consumed (from ``/healthz``: cheap enough to poll every 50 ms)."""
        return int(self.get("/healthz")["events_in"])

    def log_tail(self, lines: int = 40) -> str:
        """The end of the worker's log, for a failing test's message."""
        if self.log is None or not self.log.exists():
            return "(no log)"
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def kill9(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def produce_dir(broker_url: str, topics: Topics, data: Path, speed: float | None = None) -> None:
    """A data directory's transactions, settlements and pay-outs (when it has them) onto the
    input topics, as ``posguard produce`` sends them (``speed``: event seconds per wall second)."""
    payouts = data / "payouts.jsonl"
    produce(
        bootstrap_servers(broker_url),
        topics,
        rows_from_file(data / "transactions.jsonl", "event_time"),
        rows_from_file(data / "settlements.jsonl", "settled_at"),
        speed=speed,
        payout_rows=rows_from_file(payouts, "value_date") if payouts.is_file() else [],
    )


def read_topic(broker_url: str, topic: str) -> list[bytes]:
    """Every message value of ``topic``, partition by partition, up to the current end."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers(broker_url),
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
    )
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        values: list[bytes] = []
        remaining = {tp for tp in tps if end[tp] > 0}
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                for record in records:
                    values.append(record.value)
                    if record.offset + 1 >= end[tp]:
                        remaining.discard(tp)
        return values
    finally:
        consumer.close()
