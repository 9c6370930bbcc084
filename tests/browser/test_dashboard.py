"""The dashboard in real headless Chromium (Debian's chromium + chromedriver), against a worker
fed with a simulated run on the embedded broker. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from typing import Any

import pytest

from streams.cardmask import is_card_number
from tests.support.browser import (
    ARTIFACTS,
    click_fresh,
    log_in,
    rows,
    until,
    until_every_row_mentions,
)
from tests.support.stream import decode_all
from tests.support.worker import WorkerProcess, read_topic

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_token_is_required(worker: WorkerProcess, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/api/alerts", timeout=5)
    assert refused.value.code == 401
    browser.delete_all_cookies()
    browser.get(f"http://127.0.0.1:{worker.port}/")
    until(browser, lambda b: b.find_element(By.ID, "login").is_displayed())
    assert not browser.find_element(By.ID, "app").is_displayed()
    browser.find_element(By.ID, "token").send_keys("wrong")
    browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
    until(browser, lambda b: b.find_element(By.ID, "login-error").is_displayed())
    browser.save_screenshot(str(ARTIFACTS / "dashboard-login.png"))


def test_alerts_load_and_filters_narrow_the_list(worker: WorkerProcess, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    log_in(browser, worker)
    total = worker.get("/api/alerts?limit=1")["total"]
    until(browser, lambda b: f"of {total}" in b.find_element(By.ID, "page-info").text)
    assert "MISSING_SETTLEMENT" in browser.find_element(By.ID, "type-counts").text
    assert worker.get("/api/merchants")["at_risk"], "the run leaves money-related alerts open"

    def risk_card_agrees(b: Any) -> bool:
        shown = b.find_element(By.ID, "c-risk").text
        return all(amount in shown for amount in worker.get("/api/merchants")["at_risk"].values())

    until(browser, risk_card_agrees)
    worst = browser.find_element(By.ID, "c-worst").text
    assert re.match(r"M\d{4}", worst), worst
    browser.save_screenshot(str(ARTIFACTS / "dashboard-alerts.png"))
    Select(browser.find_element(By.CSS_SELECTOR, "#filters select[name=type]")).select_by_value(
        "MISSING_SETTLEMENT"
    )
    wanted = worker.get("/api/alerts?type=MISSING_SETTLEMENT&limit=1")["total"]
    assert 0 < wanted < total
    until(browser, lambda b: f"of {wanted}" in b.find_element(By.ID, "page-info").text)
    until_every_row_mentions(browser, "MISSING_SETTLEMENT")
    Select(browser.find_element(By.CSS_SELECTOR, "#filters select[name=type]")).select_by_value("")
    some = worker.get("/api/alerts?limit=1")["alerts"][0]
    box = browser.find_element(By.CSS_SELECTOR, "#filters input[name=q]")
    box.send_keys(some["alert_id"])
    until(browser, lambda b: len(rows(b)) == 1)
    box.clear()
    box.send_keys("\b")


def test_detail_shows_evidence_and_acknowledgement_round_trips(
    worker: WorkerProcess, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, worker)
    target = worker.get("/api/alerts?type=AMOUNT_MISMATCH&limit=1")["alerts"][0]
    box = browser.find_element(By.CSS_SELECTOR, "#filters input[name=q]")
    box.send_keys(target["alert_id"])
    until(browser, lambda b: len(rows(b)) == 1)
    click_fresh(browser, lambda b: rows(b)[0])
    detail = until(browser, lambda b: b.find_element(By.ID, "detail"))
    until(browser, lambda b: target["summary"] in detail.text)
    assert "Settlement lines" in detail.text and "expected fee" in detail.text
    assert f"At stake: {target['at_stake']['amount']} (wrong pay-out)" in detail.text
    for txn_id in target["txn_ids"]:
        assert txn_id in detail.text
    for settlement_id in target["settlement_ids"]:
        assert settlement_id in detail.text
    browser.save_screenshot(str(ARTIFACTS / "dashboard-detail.png"))
    me = browser.find_element(By.ID, "me")
    me.clear()
    me.send_keys("Ana (payment ops)")
    browser.find_element(By.CSS_SELECTOR, "#ack textarea[name=note]").send_keys(
        "asked the acquirer for a correction"
    )
    browser.find_element(By.CSS_SELECTOR, "#ack button").click()
    until(
        browser,
        lambda b: "Acknowledged by Ana (payment ops)" in b.find_element(By.ID, "detail").text,
    )
    stored = worker.get(f"/api/alerts/{target['alert_id']}")
    assert stored["acknowledgement"]["note"] == "asked the acquirer for a correction"
    assert stored["case"]["history"][-1]["action"] == "acknowledge"
    assert stored["case"]["state"] == "ACKNOWLEDGED"
    published = [
        a for a in decode_all(read_topic(worker.broker_url, worker.topics.alerts))
        if a["alert_id"] == target["alert_id"] and "acknowledgement" in a
    ]  # fmt: skip
    assert published and published[-1]["acknowledgement"]["by"] == "Ana (payment ops)"


def test_fleet_view_and_charts(worker: WorkerProcess, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, worker)
    browser.find_element(By.CSS_SELECTOR, "nav button[data-tab=merchants]").click()

    def first_row(b: Any) -> tuple[str, str] | None:
        rows = b.find_elements(By.CSS_SELECTOR, "#merchants tbody tr")
        if not rows:
            return None
        cells = rows[0].find_elements(By.TAG_NAME, "td")
        return rows[0].get_attribute("data-merchant"), cells[1].text

    merchant, open_alerts = until(browser, first_row)
    assert int(open_alerts) >= 0
    # Money settled and not paid out yet, per merchant (the batch never paid stays there).
    unpaid = {
        m["merchant_id"]: ", ".join(m["unpaid"].values())
        for m in worker.get("/api/merchants")["merchants"]
        if m["unpaid"]
    }
    assert unpaid
    browser.find_element(By.CSS_SELECTOR, '#merchants th[data-sort="unpaid"]').click()

    def unpaid_cells(b: Any) -> dict[str, str]:
        rows = b.find_elements(By.CSS_SELECTOR, "#merchants tbody tr")
        return {
            r.get_attribute("data-merchant"): r.find_element(By.CSS_SELECTOR, "td.unpaid").text
            for r in rows
        }

    shown = until(browser, unpaid_cells)
    assert all(shown[m] == amounts for m, amounts in unpaid.items()), (shown, unpaid)
    assert until(browser, lambda b: "." in b.find_element(By.ID, "c-unpaid").text)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-fleet.png"))
    click_fresh(
        browser,
        lambda b: b.find_element(
            By.CSS_SELECTOR, f'#merchants tbody tr[data-merchant="{merchant}"]'
        ),
    )
    until(browser, lambda b: b.find_element(By.ID, "tab-alerts").is_displayed())
    until_every_row_mentions(browser, merchant)
    browser.find_element(By.CSS_SELECTOR, "nav button[data-tab=charts]").click()
    until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#chart-alerts svg rect"))
    browser.save_screenshot(str(ARTIFACTS / "dashboard-charts.png"))
    # The legend's colours are set through the DOM: the CSP refuses inline style attributes.
    legend = until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#chart-alerts i"))
    assert all(i.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)" for i in legend)
    blocked = [
        e["message"] for e in browser.get_log("browser") if "Content Security" in e["message"]
    ]
    assert not blocked, blocked


def test_no_card_number_on_any_page(worker: WorkerProcess, browser: Any) -> None:
    log_in(browser, worker)
    for path in ("/", "/api/alerts?limit=500", "/api/merchants", "/api/stats"):
        browser.get(f"http://127.0.0.1:{worker.port}{path}")
        for run in re.findall(r"\d[\d -]{11,}\d", browser.page_source):
            assert not is_card_number(run), path
