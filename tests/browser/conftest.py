"""The dashboard's browser tests share one worker (fed with a simulated run on the embedded
broker, behind a token) and one headless Chromium."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from streams.simulate import SimulationSettings, write_simulation
from tests.support.brokers import tansu
from tests.support.browser import ARTIFACTS, TOKEN
from tests.support.stream import expected_from_replay, wait_until
from tests.support.tools import require
from tests.support.worker import WorkerProcess, produce_dir, unique_topics


@pytest.fixture(scope="session")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    data = tmp_path_factory.mktemp("browser-sim")
    write_simulation(data, SimulationSettings(seed=5, days=4, merchants=12))
    expected = expected_from_replay(data)
    with tansu() as url:
        topics = unique_topics()
        state = tmp_path_factory.mktemp("browser-state")
        process = WorkerProcess(
            url, topics, state, f"browser-{uuid.uuid4().hex[:8]}",
            config=data / "config.toml", token=TOKEN,
        ).start()  # fmt: skip
        try:
            produce_dir(url, topics, data)
            assert wait_until(
                lambda: process.get("/api/alerts?limit=1")["total"] == len(expected.final), 60
            )
            yield process
        finally:
            process.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = require("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP reports
    driver = webdriver.Chrome(service=Service(require("chromedriver")), options=options)
    driver.implicitly_wait(0)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
