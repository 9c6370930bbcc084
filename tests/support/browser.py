"""Helpers for driving the dashboard in headless Chromium: waits that survive the live
re-rendering, and logging in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.worker import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "correct-horse-battery"


def until(browser: Any, condition: Any, timeout: float = 15) -> Any:
    """Wait for ``condition``. The live views re-render every few seconds, so an element a
    condition found can be replaced while it reads it: that attempt counts as not yet."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(
        browser, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
    )
    return wait.until(condition)


def rows(browser: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    rows: list[Any] = browser.find_elements(By.CSS_SELECTOR, "#alerts tbody tr[data-id]")
    return rows


def until_every_row_mentions(browser: Any, text: str) -> None:
    """Wait until the alert list shows rows and every one of them contains ``text``."""
    until(browser, lambda b: (found := rows(b)) and all(text in r.text for r in found))


def click_fresh(browser: Any, find: Any) -> None:
    """Click the element ``find(browser)`` returns. The live views re-render every few seconds,
    so an element found a moment ago can be replaced before the click: find it again."""

    def attempt(b: Any) -> bool:
        find(b).click()
        return True

    until(browser, attempt)


def log_in(browser: Any, worker: WorkerProcess) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"http://127.0.0.1:{worker.port}/")
    browser.delete_all_cookies()
    browser.refresh()
    until(browser, lambda b: b.find_element(By.ID, "login").is_displayed())
    field = browser.find_element(By.ID, "token")
    field.clear()
    field.send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
    until(browser, lambda b: len(rows(b)) > 0)
