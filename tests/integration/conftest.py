"""Brokers for the integration tests: each test runs on Tansu and on Apache Kafka.

Locally a broker that cannot start skips its tests with the reason; under ``CI=true`` it fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from models.features import FEATURE_NAMES
from models.forest import save_model
from models.train import fit_model
from streams.config import Config
from streams.simulate import SimulationSettings, write_simulation
from streams.training import feature_rows
from tests.support.brokers import ApacheKafka, apache_kafka, kafka_libs, tansu, unavailable
from tests.support.stream import Expected, expected_from_replay
from tests.support.tls import make_tls_material

_BROKERS = {"tansu": tansu, "kafka": apache_kafka}


@pytest.fixture(scope="session", params=sorted(_BROKERS))
def broker_url(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    manager: AbstractContextManager[str] = _BROKERS[name]()
    try:
        url = manager.__enter__()
    except Exception as exc:
        unavailable(f"{name} broker", exc)
    try:
        yield url
    finally:
        manager.__exit__(None, None, None)


@pytest.fixture(scope="session")
def secured_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    """Apache Kafka with a SASL_SSL listener (SCRAM-SHA-512/256 and PLAIN users) and a TLS
    listener that requires client certificates, on certificates made for this session."""
    try:
        tls = make_tls_material(tmp_path_factory.mktemp("tls"))
        libs = kafka_libs()
        if libs is None:
            raise RuntimeError("the Apache Kafka jars are not available")
        broker = ApacheKafka(libs, tls).start()
    except Exception as exc:
        unavailable("secured Apache Kafka", exc)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Expected]:
    """A small simulated fleet (every alert type, suspicious patterns, bad lines, a late batch),
    two models trained on another run's history (``model.npz`` scores the stream,
    ``model-next.npz`` is swapped in while the worker runs), and what replay says."""
    data = tmp_path_factory.mktemp("sim")
    write_simulation(data, SimulationSettings(seed=11, days=4, merchants=10))
    history = tmp_path_factory.mktemp("history")
    write_simulation(history, SimulationSettings(seed=21, days=5, merchants=10))
    rows, _ = feature_rows(history / "transactions.jsonl", None, Config())
    for seed, name in ((0, "model.npz"), (1, "model-next.npz")):
        model, _ = fit_model(rows, FEATURE_NAMES, seed=seed, target_alert_rate=0.005)
        save_model(model, data / name)
    return data, expected_from_replay(data, data / "model.npz")
