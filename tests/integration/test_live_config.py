"""A configuration version pushed while the stream runs: the worker switches where replay with
the same change log switches, so the stream's alerts are replay's (on both brokers)."""

from __future__ import annotations

import threading
import tomllib
import uuid
from pathlib import Path

import pytest

from streams.config_log import VERSION_KEY, ConfigVersion, check_version
from streams.config_topic import push_version
from streams.kafka_security import KafkaSecurity
from streams.worker.settings import bootstrap_servers
from tests.integration.test_stream import (
    _assert_same_as_replay,
    _published,
    _worker,
)
from tests.support.stream import Expected, expected_from_replay, wait_until
from tests.support.worker import produce_dir, unique_topics

pytestmark = pytest.mark.integration

EFFECTIVE_AT = "2026-03-04T00:00:00Z"
"""Half way through the simulated four days."""
CHANGE = {
    "velocity": {"max_sales": 3},
    "duplicate_charge": {"window": "20s"},
    "terminal_fault": {"min_attempts": 3},
}


def test_a_version_pushed_mid_stream_gives_replays_alerts(
    broker_url: str, simulated: tuple[Path, Expected], tmp_path: Path
) -> None:
    data, plain = simulated
    document = tomllib.loads((data / "config.toml").read_text())
    for section, keys in CHANGE.items():
        document.setdefault(section, {}).update(keys)
    pushed = ConfigVersion(1, EFFECTIVE_AT, document, "ops-lead", "2026-12-06T10:00:00Z", "tune")
    expected = expected_from_replay(data, data / "model.npz", [check_version(pushed)])
    assert expected.final != plain.final, "the change makes a difference on this input"
    topics = unique_topics()
    worker = _worker(broker_url, topics, tmp_path, f"posguard-{uuid.uuid4().hex[:8]}", data)
    worker.start()
    # Paced: the stream reaches the effective time about ten seconds in.
    producer = threading.Thread(target=produce_dir, args=(broker_url, topics, data, 18_000.0))
    producer.start()
    try:
        assert wait_until(lambda: worker.events_in() >= expected.events * 0.05, 60, 0.1)
        done = push_version(
            bootstrap_servers(broker_url),
            KafkaSecurity(),
            topics.config,
            document,
            EFFECTIVE_AT,
            "ops-lead",
            "tune",
        )
        assert done.version == 1
        producer.join()
        _assert_same_as_replay(broker_url, topics, expected)
        alerts = _published(broker_url, topics)
        stamped = [a for a in alerts if isinstance(d := a["details"], dict) and d.get(VERSION_KEY)]
        assert stamped and {a["details"][VERSION_KEY] for a in stamped} == {1}  # type: ignore[index]
        status = worker.get("/api/config")
        assert status["in_force"] == {"0": 1} and not status["late"]
        assert status["versions"][0]["by"] == "ops-lead"
    finally:
        producer.join()
        worker.stop()


def test_config_push_and_list_on_the_command_line(tmp_path: Path) -> None:
    from tests.cli.test_cli import posguard
    from tests.support.brokers import tansu

    good = tmp_path / "proposed.toml"
    good.write_text('[duplicate_charge]\nwindow = "45s"\n')
    bad = tmp_path / "typo.toml"
    bad.write_text('[duplicate_charge]\nwindw = "45s"\n')
    topics = unique_topics()
    with tansu() as url:
        env = {"POSGUARD_TOPIC_CONFIG": topics.config}
        flags = ["--kafka", url]
        first = posguard("config", "push", str(good), *flags, "--effective-at", "now+10m",
                         "--by", "ana", "--comment", "narrower", env=env)  # fmt: skip
        assert first.returncode == 0, first.stderr
        assert "configuration version 1 pushed" in first.stdout
        refused = posguard("config", "push", str(bad), *flags, env=env)
        assert refused.returncode == 2 and "windw" in refused.stderr
        second = posguard("config", "push", str(good), *flags, "--effective-at",
                          "2026-03-05T00:00:00+01:00", env=env)  # fmt: skip
        assert second.returncode == 0 and "version 2" in second.stdout, second.stderr
        listed = posguard("config", "list", *flags, env=env)
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert [line.split()[0] for line in lines] == ["2", "1"], lines
        assert "by ana" in lines[1] and "narrower" in lines[1]
