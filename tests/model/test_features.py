"""Feature rows: computed on event time, the same in every run, what the words say."""

from __future__ import annotations

import math

import pytest

from models.features import FEATURE_NAMES, FeatureTracker, round_amount
from streams.config import Config
from streams.training import feature_rows
from tests.model.conftest import Trained

MIN = 60_000_000


def _sale(tracker: FeatureTracker, ts: int, amount: int, **kw: object) -> list[float]:
    args: dict[str, object] = {
        "ts": ts,
        "merchant_id": "M1",
        "terminal_id": "T1",
        "card_token": "c1",
        "kind": "SALE",
        "status": "APPROVED",
        "amount_minor": amount,
        "currency_exponent": 2,
        "channel": "CARD",
        "entry_mode": "CHIP",
        "local_hour": 12.0,
        "day_of_week": 2,
    }
    args.update(kw)
    result = tracker.on_transaction(**args)  # type: ignore[arg-type]
    assert result is not None
    return result[0]


def f(row: list[float], name: str) -> float:
    return row[FEATURE_NAMES.index(name)]


def test_amount_is_judged_against_the_merchants_own_history() -> None:
    tracker = FeatureTracker()
    for i in range(50):
        _sale(tracker, i * 20 * MIN, 1000, card_token=f"c{i}")
    row = _sale(tracker, 2000 * MIN, 31000, card_token="big")
    assert math.exp(f(row, "amount_vs_merchant")) == pytest.approx(31.0)
    assert f(row, "round_amount") == 2.0  # 310.00


def test_card_velocity_and_merchants_in_ten_minutes() -> None:
    tracker = FeatureTracker()
    _sale(tracker, 0, 500)
    _sale(tracker, 2 * MIN, 500, merchant_id="M2", terminal_id="T2")
    tracker.on_transaction(
        ts=3 * MIN,
        merchant_id="M3",
        terminal_id="T3",
        card_token="c1",
        kind="SALE",
        status="DECLINED",
        amount_minor=100,
        currency_exponent=2,
        channel="CARD",
        entry_mode="KEYED",
        local_hour=12.0,
        day_of_week=2,
    )
    row = _sale(tracker, 4 * MIN, 500, merchant_id="M3", terminal_id="T3", entry_mode="KEYED")
    assert f(row, "card_sales_10m") == 3
    assert f(row, "card_merchants_10m") == 3
    assert f(row, "card_declines_1h") == 1
    assert f(row, "entry_risk") == 2.0
    assert f(row, "log_seconds_since_card_sale") == pytest.approx(math.log1p(120))
    later = _sale(tracker, 30 * MIN, 500)
    assert f(later, "card_sales_10m") == 1


def test_round_amounts() -> None:
    assert round_amount(1234, 2) == 0.0
    assert round_amount(500, 2) == 1.0
    assert round_amount(4_800_000, 2) == 4.0
    assert round_amount(48000, 0) == 4.0


def test_rows_are_identical_in_two_runs(trained: Trained) -> None:
    again, _ = feature_rows(trained.history / "transactions.jsonl", None, Config())
    assert again == trained.rows.tolist()
    assert all(math.isfinite(v) for row in again for v in row)
