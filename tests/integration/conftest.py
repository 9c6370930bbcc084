"""Brokers for the integration tests: each test runs on Tansu and on Apache Kafka.

Locally a broker that cannot start skips its tests with the reason; under ``CI=true`` it fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from streams.simulate import SimulationSettings, write_simulation
from tests.support.brokers import apache_kafka, tansu
from tests.support.stream import Expected, expected_from_replay

_BROKERS = {"tansu": tansu, "kafka": apache_kafka}


@pytest.fixture(scope="session", params=sorted(_BROKERS))
def broker_url(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    manager: AbstractContextManager[str] = _BROKERS[name]()
    try:
        url = manager.__enter__()
    except Exception as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{name} broker unavailable here: {exc}")
    try:
        yield url
    finally:
        manager.__exit__(None, None, None)


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Expected]:
    """A small simulated fleet (every alert type, bad lines, a late batch) and what replay says."""
    data = tmp_path_factory.mktemp("sim")
    write_simulation(data, SimulationSettings(seed=11, days=4, merchants=10))
    return data, expected_from_replay(data)
