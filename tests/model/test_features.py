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


def test_amount_is_judged_against_the_cards_own_history_wherever_it_is_used() -> None:
    """A stolen card spending five times its owner's usual, at a merchant whose sales are all of
    that size: only the card's own history shows it (the handbook's compromised cards)."""
    tracker = FeatureTracker()
    for day in range(20):
        _sale(tracker, day * 1440 * MIN, 2000, card_token="owner", merchant_id=f"M{day % 3}")
    for i in range(30):
        _sale(tracker, i * MIN, 10000, card_token=f"other{i}", merchant_id="BIG", terminal_id="B")
    row = _sale(tracker, 30000 * MIN, 10000, card_token="owner", merchant_id="BIG", terminal_id="B")
    assert math.exp(f(row, "amount_vs_card")) == pytest.approx(5.0)
    assert f(row, "amount_vs_merchant") == pytest.approx(0.0)
    assert math.exp(f(row, "log_amount")) == pytest.approx(100.0)  # 100.00 in major units
    first = _sale(tracker, 30001 * MIN, 777, card_token="new card")
    assert f(first, "amount_vs_card") == 0.0  # nothing known yet: not unusual
    yen = _sale(tracker, 30002 * MIN, 5000, card_token="jp", currency_exponent=0)
    assert math.exp(f(yen, "log_amount")) == pytest.approx(5000.0)


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


def test_the_card_features_in_words() -> None:
    from models.features import SaleContext
    from streams.engine.patterns import describe_feature
    from streams.events import Transaction
    from tests.builders import txn

    t = txn("T9", 0, amount=10000, currency="EUR")
    assert isinstance(t, Transaction)
    ctx = SaleContext(10, math.log(10000), 10, math.log(10000), 0.1, None, 12, math.log(2000))
    assert describe_feature("amount_vs_card", math.log(5), t, ctx) == (
        "amount 100.00 EUR is 5.0x this card's typical sale of 20.00 EUR"
    )
    assert describe_feature("log_amount", math.log(100), t, ctx) == "an amount of 100.00 EUR"
    new_card = ctx._replace(card_sales=0)
    assert describe_feature("amount_vs_card", 0.0, t, new_card) == (
        "amount 100.00 EUR is the first sale seen for this card"
    )
