"""The dashboard in real headless Chromium (Debian's chromium + chromedriver), against a worker
fed with a simulated run on the embedded broker. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.cardmask import is_card_number
from streams.simulate import SimulationSettings, write_simulation
from streams.simulate.produce import produce, rows_from_file
from streams.worker.settings import bootstrap_servers
from tests.support.brokers import tansu
from tests.support.stream import decode_all, expected_from_replay, wait_until
from tests.support.tools import require
from tests.support.worker import WorkerProcess, read_topic, unique_topics

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "correct-horse-battery"


@pytest.fixture(scope="module")
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
            produce(
                bootstrap_servers(url),
                topics,
                rows_from_file(data / "transactions.jsonl", "event_time"),
                rows_from_file(data / "settlements.jsonl", "settled_at"),
            )
            assert wait_until(
                lambda: process.get("/api/alerts?limit=1")["total"] == len(expected.final), 60
            )
            yield process
        finally:
            process.stop()


@pytest.fixture(scope="module")
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


def _until(browser: Any, condition: Any, timeout: float = 15) -> Any:
    """Wait for ``condition``. The live views re-render every few seconds, so an element a
    condition found can be replaced while it reads it: that attempt counts as not yet."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(
        browser, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
    )
    return wait.until(condition)


def _rows(browser: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    rows: list[Any] = browser.find_elements(By.CSS_SELECTOR, "#alerts tbody tr[data-id]")
    return rows


def _until_every_row_mentions(browser: Any, text: str) -> None:
    """Wait until the alert list shows rows and every one of them contains ``text``."""
    _until(browser, lambda b: (rows := _rows(b)) and all(text in r.text for r in rows))


def _click_fresh(browser: Any, find: Any) -> None:
    """Click the element ``find(browser)`` returns. The live views re-render every few seconds,
    so an element found a moment ago can be replaced before the click: find it again."""

    def attempt(b: Any) -> bool:
        find(b).click()
        return True

    _until(browser, attempt)


def _log_in(browser: Any, worker: WorkerProcess) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"http://127.0.0.1:{worker.port}/")
    browser.delete_all_cookies()
    browser.refresh()
    _until(browser, lambda b: b.find_element(By.ID, "login").is_displayed())
    field = browser.find_element(By.ID, "token")
    field.clear()
    field.send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
    _until(browser, lambda b: len(_rows(b)) > 0)


def test_token_is_required(worker: WorkerProcess, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/api/alerts", timeout=5)
    assert refused.value.code == 401
    browser.delete_all_cookies()
    browser.get(f"http://127.0.0.1:{worker.port}/")
    _until(browser, lambda b: b.find_element(By.ID, "login").is_displayed())
    assert not browser.find_element(By.ID, "app").is_displayed()
    browser.find_element(By.ID, "token").send_keys("wrong")
    browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
    _until(browser, lambda b: b.find_element(By.ID, "login-error").is_displayed())
    browser.save_screenshot(str(ARTIFACTS / "dashboard-login.png"))


def test_alerts_load_and_filters_narrow_the_list(worker: WorkerProcess, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _log_in(browser, worker)
    total = worker.get("/api/alerts?limit=1")["total"]
    _until(browser, lambda b: f"of {total}" in b.find_element(By.ID, "page-info").text)
    assert "MISSING_SETTLEMENT" in browser.find_element(By.ID, "type-counts").text
    assert worker.get("/api/merchants")["at_risk"], "the run leaves money-related alerts open"

    def risk_card_agrees(b: Any) -> bool:
        shown = b.find_element(By.ID, "c-risk").text
        return all(amount in shown for amount in worker.get("/api/merchants")["at_risk"].values())

    _until(browser, risk_card_agrees)
    worst = browser.find_element(By.ID, "c-worst").text
    assert re.match(r"M\d{4}", worst), worst
    browser.save_screenshot(str(ARTIFACTS / "dashboard-alerts.png"))
    Select(browser.find_element(By.CSS_SELECTOR, "#filters select[name=type]")).select_by_value(
        "MISSING_SETTLEMENT"
    )
    wanted = worker.get("/api/alerts?type=MISSING_SETTLEMENT&limit=1")["total"]
    assert 0 < wanted < total
    _until(browser, lambda b: f"of {wanted}" in b.find_element(By.ID, "page-info").text)
    _until_every_row_mentions(browser, "MISSING_SETTLEMENT")
    Select(browser.find_element(By.CSS_SELECTOR, "#filters select[name=type]")).select_by_value("")
    some = worker.get("/api/alerts?limit=1")["alerts"][0]
    box = browser.find_element(By.CSS_SELECTOR, "#filters input[name=q]")
    box.send_keys(some["alert_id"])
    _until(browser, lambda b: len(_rows(b)) == 1)
    box.clear()
    box.send_keys("\b")


def test_detail_shows_evidence_and_acknowledgement_round_trips(
    worker: WorkerProcess, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    _log_in(browser, worker)
    target = worker.get("/api/alerts?type=AMOUNT_MISMATCH&limit=1")["alerts"][0]
    box = browser.find_element(By.CSS_SELECTOR, "#filters input[name=q]")
    box.send_keys(target["alert_id"])
    _until(browser, lambda b: len(_rows(b)) == 1)
    _click_fresh(browser, lambda b: _rows(b)[0])
    detail = _until(browser, lambda b: b.find_element(By.ID, "detail"))
    _until(browser, lambda b: target["summary"] in detail.text)
    assert "Settlement lines" in detail.text and "expected fee" in detail.text
    assert f"At stake: {target['at_stake']['amount']} (wrong pay-out)" in detail.text
    for txn_id in target["txn_ids"]:
        assert txn_id in detail.text
    for settlement_id in target["settlement_ids"]:
        assert settlement_id in detail.text
    browser.save_screenshot(str(ARTIFACTS / "dashboard-detail.png"))
    browser.find_element(By.CSS_SELECTOR, "#ack input[name=by]").send_keys("Ana (payment ops)")
    browser.find_element(By.CSS_SELECTOR, "#ack textarea[name=note]").send_keys(
        "asked the acquirer for a correction"
    )
    browser.find_element(By.CSS_SELECTOR, "#ack button").click()
    _until(
        browser,
        lambda b: "Acknowledged by Ana (payment ops)" in b.find_element(By.ID, "detail").text,
    )
    stored = worker.get(f"/api/alerts/{target['alert_id']}")
    assert stored["acknowledgement"]["note"] == "asked the acquirer for a correction"
    assert stored["history"][-1]["status"] == "ACKNOWLEDGED"
    published = [
        a for a in decode_all(read_topic(worker.broker_url, worker.topics.alerts))
        if a["alert_id"] == target["alert_id"] and "acknowledgement" in a
    ]  # fmt: skip
    assert published and published[-1]["acknowledgement"]["by"] == "Ana (payment ops)"


def test_fleet_view_and_charts(worker: WorkerProcess, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    _log_in(browser, worker)
    browser.find_element(By.CSS_SELECTOR, "nav button[data-tab=merchants]").click()

    def first_row(b: Any) -> tuple[str, str] | None:
        rows = b.find_elements(By.CSS_SELECTOR, "#merchants tbody tr")
        if not rows:
            return None
        cells = rows[0].find_elements(By.TAG_NAME, "td")
        return rows[0].get_attribute("data-merchant"), cells[1].text

    merchant, open_alerts = _until(browser, first_row)
    assert int(open_alerts) >= 0
    browser.save_screenshot(str(ARTIFACTS / "dashboard-fleet.png"))
    _click_fresh(
        browser,
        lambda b: b.find_element(
            By.CSS_SELECTOR, f'#merchants tbody tr[data-merchant="{merchant}"]'
        ),
    )
    _until(browser, lambda b: b.find_element(By.ID, "tab-alerts").is_displayed())
    _until_every_row_mentions(browser, merchant)
    browser.find_element(By.CSS_SELECTOR, "nav button[data-tab=charts]").click()
    _until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#chart-alerts svg rect"))
    browser.save_screenshot(str(ARTIFACTS / "dashboard-charts.png"))
    # The legend's colours are set through the DOM: the CSP refuses inline style attributes.
    legend = _until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#chart-alerts i"))
    assert all(i.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)" for i in legend)
    blocked = [
        e["message"] for e in browser.get_log("browser") if "Content Security" in e["message"]
    ]
    assert not blocked, blocked


def test_no_card_number_on_any_page(worker: WorkerProcess, browser: Any) -> None:
    _log_in(browser, worker)
    for path in ("/", "/api/alerts?limit=500", "/api/merchants", "/api/stats"):
        browser.get(f"http://127.0.0.1:{worker.port}{path}")
        for run in re.findall(r"\d[\d -]{11,}\d", browser.page_source):
            assert not is_card_number(run), path
