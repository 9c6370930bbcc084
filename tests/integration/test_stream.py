"""The worker on a real broker gives what replay gives, survives kill -9, dead-letters bad input.

Each test runs on both brokers (see conftest), on its own uuid topics and consumer group.
"""

from __future__ import annotations

import re
import shutil
import threading
import uuid
from collections import Counter
from pathlib import Path

import msgspec
import pytest
from kafka.partitioner.default import murmur2

from streams.cardmask import is_card_number
from streams.worker.settings import Topics
from tests.support.stream import Expected, decode_all, final_states, versions, wait_until
from tests.support.worker import WorkerProcess, produce_dir, read_topic, unique_topics

pytestmark = pytest.mark.integration

_DIGIT_RUN = re.compile(r"\d[\d -]{11,}\d")


def _worker(
    broker_url: str, topics: Topics, tmp_path: Path, group: str, data: Path, disk: str = "state"
) -> WorkerProcess:
    state = tmp_path / disk
    state.mkdir(exist_ok=True)
    model = tmp_path / "model.npz"
    if not model.exists():
        shutil.copy(data / "model.npz", model)
    return WorkerProcess(broker_url, topics, state, group, config=data / "config.toml", model=model)


def _published(broker_url: str, topics: Topics) -> list[dict[str, object]]:
    return decode_all(read_topic(broker_url, topics.alerts))


def _assert_same_as_replay(broker_url: str, topics: Topics, expected: Expected) -> None:
    ok = wait_until(
        lambda: final_states(_published(broker_url, topics)) == expected.final, timeout_s=60
    )
    alerts = _published(broker_url, topics)
    got = final_states(alerts)
    missing = {k: v for k, v in expected.final.items() if got.get(k) != v}
    extra = {k: v for k, v in got.items() if k not in expected.final}
    assert ok and not missing and not extra, (missing, extra)
    # Re-publishing the same content is allowed; different content for the same id is a bug.
    for alert_id, contents in versions(alerts).items():
        assert contents <= expected.versions[alert_id], alert_id


def _assert_no_card_number(broker_url: str, topic: str) -> None:
    for value in read_topic(broker_url, topic):
        for run in _DIGIT_RUN.findall(value.decode("utf-8", "replace")):
            assert not is_card_number(run), f"card number in {topic}"


def _assert_metrics(worker: WorkerProcess, expected: Expected) -> None:
    samples: dict[str, float] = {}

    def total(prefix: str) -> float:
        return sum(v for k, v in samples.items() if k.startswith(prefix))

    def read() -> bool:
        samples.clear()
        for line in worker.metrics().splitlines():
            if line.startswith("posguard_"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        opened = sum(1 for _, status in expected.final.values() if status == "OPEN")
        return total("posguard_alerts_open{") == opened  # gauges refresh every 2 s

    assert wait_until(read, 10, 0.5)
    assert total("posguard_events_in_total{") == expected.events
    for reason, n in expected.dead_reasons.items():
        assert samples[f'posguard_dead_letters_total{{reason="{reason}"}}'] == n
    assert samples["posguard_settlement_feed_gap"] == 0
    assert total("posguard_alerts_raised_total{") == len(expected.final)
    # Bounded labels only: no transaction, settlement, merchant or alert id in any label.
    for name in samples:
        assert not re.search(r'"(T0|S0|M0|[A-Z]{2}-[0-9a-f]{8})', name), name


def test_stream_equals_replay_and_dead_letters_bad_input(
    broker_url: str, simulated: tuple[Path, Expected], tmp_path: Path
) -> None:
    data, expected = simulated
    topics = unique_topics()
    group = f"posguard-{uuid.uuid4().hex[:8]}"
    worker = _worker(broker_url, topics, tmp_path, group, data).start()
    try:
        produce_dir(broker_url, topics, data)
        _assert_same_as_replay(broker_url, topics, expected)
        dead = decode_all(read_topic(broker_url, topics.deadletter))
        assert Counter(d["reason"] for d in dead) == expected.dead_reasons
        for letter in dead:
            source = letter["source"]
            assert isinstance(source, dict)
            assert source["topic"] in (topics.transactions, topics.settlements)
            assert isinstance(source["offset"], int) and source["partition"] == 0
        assert worker.events_in() == expected.events
        for topic in (
            topics.alerts,
            topics.deadletter,
            f"{group}-journal-changelog",
            f"{group}-cards",
            f"{group}-cards-changelog",
        ):
            _assert_no_card_number(broker_url, topic)
        _assert_metrics(worker, expected)
        merchants = worker.get("/api/merchants")["merchants"]
        assert sum(m["open_alerts"] for m in merchants) == sum(
            1 for _, status in expected.final.values() if status == "OPEN"
        )
        page = worker.get("/api/alerts?status=OPEN&limit=5")
        assert page["total"] == sum(1 for _, s in expected.final.values() if s == "OPEN")
        assert len(page["alerts"]) == min(5, page["total"])
        _assert_model_hot_swap(worker, data, tmp_path / "model.npz")
    finally:
        worker.stop()


def _assert_model_hot_swap(worker: WorkerProcess, data: Path, live: Path) -> None:
    """The worker scores with the configured model and picks up a new file without a restart;
    a damaged file is refused and the previous model keeps scoring."""
    first = worker.get("/api/model")
    assert first["enabled"] and first["error"] is None
    assert any(t == "SUSPICIOUS_PATTERN" for t, _ in expected_types(worker))
    staged = live.with_name("staged.npz")
    shutil.copy(data / "model-next.npz", staged)
    staged.replace(live)
    assert wait_until(lambda: worker.get("/api/model")["version"] != first["version"], 20, 0.5)
    swapped = worker.get("/api/model")["version"]
    staged.write_bytes(b"damaged")
    staged.replace(live)
    assert wait_until(lambda: worker.get("/api/model")["error"] is not None, 20, 0.5)
    after = worker.get("/api/model")
    assert after["enabled"] and after["version"] == swapped
    assert "not a posguard model file" in after["error"]


def expected_types(worker: WorkerProcess) -> list[tuple[str, str]]:
    page = worker.get("/api/alerts?type=SUSPICIOUS_PATTERN&limit=5")
    return [(a["type"], a["status"]) for a in page["alerts"]]


@pytest.mark.parametrize(
    "second_disk",
    [
        "state",  # restarted on the same machine: RocksDB holds the tables, the changelog's tail
        "elsewhere",  # another machine takes over: everything is rebuilt from the changelog
    ],
)
def test_kill9_mid_stream_then_restart_changes_nothing(
    broker_url: str, simulated: tuple[Path, Expected], tmp_path: Path, second_disk: str
) -> None:
    data, expected = simulated
    topics = unique_topics()
    group = f"posguard-{uuid.uuid4().hex[:8]}"
    first = _worker(broker_url, topics, tmp_path, group, data).start()
    # Paced so the kill lands mid-stream: four days of event time in about ten seconds.
    producer = threading.Thread(target=produce_dir, args=(broker_url, topics, data, 36_000.0))
    producer.start()
    try:
        assert wait_until(lambda: first.events_in() >= expected.events * 0.4, 60, 0.1)
        first.kill9()
        assert len(_published(broker_url, topics)) > 0
        second = _worker(broker_url, topics, tmp_path, group, data, second_disk).start()
        try:
            producer.join()
            _assert_same_as_replay(broker_url, topics, expected)
        finally:
            second.stop()
    finally:
        producer.join()
        first.stop()


def test_card_velocity_across_partitions_and_workers_equals_replay(
    broker_url: str, simulated: tuple[Path, Expected], tmp_path: Path
) -> None:
    """Two partitions by merchant, two workers in one group (one partition each): a card used
    at merchants of both partitions is still one velocity alert, through the repartition by
    card and across workers, with replay's id and content."""
    data, expected = simulated
    velocity = {k: v for k, v in expected.final.items() if v[0] == "VELOCITY"}
    spans = [_partitions_of(expected.versions[k], 2) for k in velocity]
    assert max(len(s) for s in spans) > 1, "a velocity alert spans merchants of two partitions"
    topics = unique_topics()
    group = f"posguard-{uuid.uuid4().hex[:8]}"
    workers = [
        _worker(broker_url, topics, tmp_path, group, data, disk=f"worker-{i}") for i in range(2)
    ]
    try:
        for worker in workers:
            worker.partitions = 2
            worker.start()
        assert wait_until(
            lambda: [w.get("/healthz")["partitions"] for w in workers] in ([[0], [1]], [[1], [0]]),
            timeout_s=60,
            every_s=0.5,
        ), "each worker owns one partition"
        produce_dir(broker_url, topics, data)

        def velocity_alerts() -> list[dict[str, object]]:
            return [a for a in _published(broker_url, topics) if a["type"] == "VELOCITY"]

        ok = wait_until(lambda: final_states(velocity_alerts()) == velocity, timeout_s=120)
        logs = "\n".join(f"--- worker {i}\n{w.log_tail()}" for i, w in enumerate(workers))
        assert ok, (final_states(velocity_alerts()), velocity, logs)
        for alert_id, contents in versions(velocity_alerts()).items():
            assert contents <= expected.versions[alert_id], alert_id
    finally:
        for worker in workers:
            worker.stop()


def _partitions_of(contents: set[bytes], partitions: int) -> set[int]:
    """The input partitions (by the producer's key hash) of the merchants an alert names."""
    merchants: set[str] = set()
    for content in contents:
        details = msgspec.json.decode(content)["details"]
        merchants.update(details.get("merchants", []))
    return {(murmur2(m.encode()) & 0x7FFFFFFF) % partitions for m in merchants}
