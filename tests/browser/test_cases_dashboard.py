"""Working alerts as cases in real headless Chromium: close with a disposition, snooze, bulk
close over a filter, export, the precision view; and the alert list with 10,000 open alerts.
Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import csv
import io
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import msgspec
import pytest

from streams.config_topic import push_version
from streams.kafka_security import KafkaSecurity
from streams.simulate.produce import produce
from streams.timefmt import to_us
from streams.worker.settings import bootstrap_servers
from tests.builders import txn_doc
from tests.support.brokers import tansu
from tests.support.browser import ARTIFACTS, TOKEN, click_fresh, log_in, rows, until
from tests.support.stream import wait_until
from tests.support.worker import WorkerProcess, unique_topics

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _open_detail(browser: Any, alert_id: str, who: str) -> Any:
    from selenium.webdriver.common.by import By

    box = browser.find_element(By.CSS_SELECTOR, "#filters input[name=q]")
    box.clear()
    box.send_keys(alert_id)
    until(browser, lambda b: len(rows(b)) == 1 and alert_id in b.page_source)
    click_fresh(browser, lambda b: rows(b)[0])
    until(browser, lambda b: alert_id in b.find_element(By.ID, "detail").text)
    me = browser.find_element(By.ID, "me")
    me.clear()
    me.send_keys(who)
    return browser.find_element(By.ID, "detail")


def _clear_search(browser: Any) -> None:
    from selenium.webdriver.common.by import By

    box = browser.find_element(By.CSS_SELECTOR, "#filters input[name=q]")
    box.clear()
    box.send_keys("\b")


def test_close_a_case_with_a_disposition_shows_its_history(
    worker: WorkerProcess, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    log_in(browser, worker)
    target = worker.get("/api/alerts?type=MISSING_SETTLEMENT&status=OPEN&limit=1")["alerts"][0]
    detail = _open_detail(browser, target["alert_id"], "Ana (payment ops)")
    detail.find_element(By.CSS_SELECTOR, "#ack textarea[name=note]").send_keys(
        "calling the acquirer"
    )
    detail.find_element(By.CSS_SELECTOR, "#ack button").click()
    until(browser, lambda b: "State ACKNOWLEDGED" in b.find_element(By.ID, "case-state").text)
    form = browser.find_element(By.ID, "close-case")
    Select(form.find_element(By.NAME, "disposition")).select_by_value("RECOVERED")
    form.find_element(By.NAME, "recovered").send_keys(target["at_stake"]["amount"].split()[0])
    form.find_element(By.NAME, "comment").send_keys("acquirer re-sent the line; money arrived")
    form.find_element(By.TAG_NAME, "button").click()
    until(browser, lambda b: "State CLOSED" in b.find_element(By.ID, "case-state").text)
    history = browser.find_element(By.ID, "case-history").text
    assert "acknowledge: calling the acquirer" in history
    assert "close as money recovered: acquirer re-sent the line" in history
    browser.save_screenshot(str(ARTIFACTS / "case-closed-with-history.png"))
    case = worker.get(f"/api/alerts/{target['alert_id']}")["case"]
    assert case["state"] == "CLOSED" and case["disposition"] == "RECOVERED"
    assert (case["recovered_minor"], case["currency"]) == (
        target["at_stake"]["minor"],
        target["at_stake"]["currency"],
    )
    # A closed case can be reopened, with a reason.
    reopen = browser.find_element(By.ID, "reopen")
    reopen.find_element(By.NAME, "comment").send_keys("customer still disputes")
    reopen.find_element(By.TAG_NAME, "button").click()
    until(browser, lambda b: "State ACKNOWLEDGED" in b.find_element(By.ID, "case-state").text)
    _clear_search(browser)


def test_snooze_hides_a_case_for_a_while(worker: WorkerProcess, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    log_in(browser, worker)
    target = worker.get("/api/alerts?type=MISSING_SETTLEMENT&case=NEW&limit=1")["alerts"][0]
    _open_detail(browser, target["alert_id"], "Bo")
    form = browser.find_element(By.ID, "snooze")
    Select(form.find_element(By.NAME, "hours")).select_by_value("4")
    form.find_element(By.TAG_NAME, "button").click()
    until(browser, lambda b: "State SNOOZED" in b.find_element(By.ID, "case-state").text)
    case = worker.get(f"/api/alerts/{target['alert_id']}")["case"]
    assert case["state"] == "SNOOZED" and case["snoozed_until"]
    snoozed = worker.get("/api/alerts?case=SNOOZED&limit=500")["alerts"]
    assert target["alert_id"] in {a["alert_id"] for a in snoozed}
    _clear_search(browser)


def test_bulk_close_over_a_filter_then_export_and_precision(
    worker: WorkerProcess, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select

    log_in(browser, worker)
    kind = "TERMINAL_FAULT"
    wanted = worker.get(f"/api/alerts?type={kind}&limit=500")["alerts"]
    assert wanted, f"the simulated run has {kind} alerts"
    some = worker.get("/api/alerts?limit=1")["alerts"][0]
    _open_detail(browser, some["alert_id"], "Cy (team lead)")
    browser.find_element(By.ID, "me").send_keys("\t")  # remembered for the bulk form
    _clear_search(browser)
    Select(browser.find_element(By.CSS_SELECTOR, "#filters select[name=type]")).select_by_value(
        kind
    )
    until(browser, lambda b: f"of {len(wanted)}" in b.find_element(By.ID, "page-info").text)
    bulk = browser.find_element(By.ID, "bulk")
    Select(bulk.find_element(By.NAME, "action")).select_by_value("close")
    Select(bulk.find_element(By.NAME, "disposition")).select_by_value("CONFIRMED")
    bulk.find_element(By.NAME, "comment").send_keys("terminals swapped by the field team")
    bulk.find_element(By.TAG_NAME, "button").click()
    until(browser, expected_conditions.alert_is_present()).accept()
    until(browser, lambda b: f"{len(wanted)} changed" in b.find_element(By.ID, "bulk-result").text)
    closed = worker.get(f"/api/alerts?type={kind}&case=CLOSED&limit=500")
    assert closed["total"] == len(wanted)
    until(browser, lambda b: all("CLOSED" in r.text for r in rows(b)))

    href = browser.find_element(By.ID, "export").get_attribute("href")
    assert f"type={kind}" in href
    request = urllib.request.Request(href, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/csv")
        exported = list(csv.DictReader(io.StringIO(r.read().decode())))
    assert sorted(e["alert_id"] for e in exported) == sorted(a["alert_id"] for a in wanted)
    assert {e["case_state"] for e in exported} == {"CLOSED"}

    browser.find_element(By.CSS_SELECTOR, "nav button[data-tab=cases]").click()
    until(browser, lambda b: kind in b.find_element(By.ID, "precision").text)
    row = next(
        r for r in browser.find_elements(By.CSS_SELECTOR, "#precision tbody tr") if kind in r.text
    )
    assert "100.0 %" in row.text
    browser.save_screenshot(str(ARTIFACTS / "case-precision.png"))
    browser.find_element(By.CSS_SELECTOR, "nav button[data-tab=alerts]").click()
    Select(browser.find_element(By.CSS_SELECTOR, "#filters select[name=type]")).select_by_value("")


# -- 10,000 open alerts ----------------------------------------------------------------------

_MANY = 10_000


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """A worker holding 10,000 open DUPLICATE_CHARGE alerts (two charges each, no void)."""
    state = tmp_path_factory.mktemp("crowded-state")
    with tansu() as url:
        topics = unique_topics()
        worker = WorkerProcess(url, topics, state, f"crowd-{uuid.uuid4().hex[:6]}", token=TOKEN)
        worker.start()
        try:
            sales: list[tuple[int, int, bytes]] = []
            for i in range(_MANY):
                for n in (0, 1):
                    doc = txn_doc(
                        f"T{i:05d}-{n}", i * 600 + n * 30, merchant=f"M{i % 50:03d}", card=f"c{i}"
                    )
                    ts = to_us(datetime.fromisoformat(doc["event_time"]))
                    sales.append((ts, len(sales), msgspec.json.encode(doc)))
            produce(bootstrap_servers(url), topics, sales, [])
            assert wait_until(lambda: worker.get("/api/alerts?limit=1")["total"] >= _MANY, 180)
            yield worker
        finally:
            worker.stop()


def test_the_alert_list_stays_responsive_with_10000_open_alerts(
    crowded: WorkerProcess, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    total = crowded.get("/api/alerts?limit=1")["total"]  # and the feed gap: no settlements
    started = time.perf_counter()
    log_in(browser, crowded)
    until(browser, lambda b: f"of {total}" in b.find_element(By.ID, "page-info").text, 30)
    first = time.perf_counter() - started
    assert len(rows(browser)) == 50, "paginated: one page of 50"
    started = time.perf_counter()
    browser.find_element(By.ID, "next").click()
    until(browser, lambda b: f"51\u2013100 of {total}" in b.find_element(By.ID, "page-info").text)
    paging = time.perf_counter() - started
    started = time.perf_counter()
    browser.find_element(By.CSS_SELECTOR, "#filters input[name=merchant]").send_keys("M007")
    until(browser, lambda b: f"of {_MANY // 50}" in b.find_element(By.ID, "page-info").text)
    filtering = time.perf_counter() - started
    print(
        f"\n10,000 open alerts: first page shown {first:.2f} s after login, next page "
        f"{paging:.2f} s, a merchant filter {filtering:.2f} s"
    )
    browser.save_screenshot(str(ARTIFACTS / "alerts-10000-open.png"))
    assert first < 30 and paging < 15 and filtering < 15


def test_the_configuration_view_shows_pushed_versions(worker: WorkerProcess, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    pushed = push_version(
        bootstrap_servers(worker.broker_url),
        KafkaSecurity(),
        worker.topics.config,
        {"duplicate_charge": {"window": "60s"}, "velocity": {"max_sales": 4}},
        "2030-01-01T00:00:00Z",
        "Dee (risk)",
        "tighter duplicates before the holidays",
    )
    log_in(browser, worker)
    browser.find_element(By.CSS_SELECTOR, "nav button[data-tab=config]").click()
    until(browser, lambda b: "Dee (risk)" in b.find_element(By.ID, "config-versions").text)
    row = browser.find_element(
        By.CSS_SELECTOR, f'#config-versions tr[data-version="{pushed.version}"]'
    )
    assert "2030-01-01T00:00:00Z" in row.text and "tighter duplicates" in row.text
    until(browser, lambda b: '"max_sales": 4' in b.find_element(By.ID, "config-document").text)
    # Not in force yet: the stream has not reached 2030.
    assert "partition 0: the worker's file" in browser.find_element(By.ID, "config-in-force").text
    browser.save_screenshot(str(ARTIFACTS / "configuration-versions.png"))
    browser.find_element(By.CSS_SELECTOR, "nav button[data-tab=alerts]").click()
