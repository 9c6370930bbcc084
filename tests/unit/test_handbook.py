"""The handbook's simulator (``streams/simulate/handbook.py``) does what its published description
says, and its output is posguard input; card precision@k counts as the handbook does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.metrics import card_precision_at_k
from streams.decode import EventDecoder
from streams.events import Feedback, Transaction
from streams.simulate.handbook import (
    AMOUNT_LIMIT,
    FEEDBACK_DELAY_DAYS,
    HandbookSettings,
    HandbookTransactions,
    generate,
    write_feedback,
    write_transactions,
)

SMALL = HandbookSettings(customers=300, terminals=600, days=60, seed=3)


@pytest.fixture(scope="module")
def data() -> HandbookTransactions:
    return generate(SMALL)


def test_deterministic_per_seed_and_different_across_seeds(data: HandbookTransactions) -> None:
    again = generate(SMALL)
    assert np.array_equal(again.cents, data.cents) and np.array_equal(again.kind, data.kind)
    other = generate(HandbookSettings(customers=300, terminals=600, days=60, seed=4))
    assert not np.array_equal(other.cents[:100], data.cents[:100])


def test_transactions_look_like_the_description(data: HandbookTransactions) -> None:
    assert np.all(np.diff(data.seconds) >= 0)
    assert np.all((data.seconds - data.day * 86400 > 0) & (data.seconds - data.day * 86400 < 86400))
    genuine = data.cents[data.kind == 0] / 100
    assert genuine.min() > 0 and genuine.max() <= AMOUNT_LIMIT
    # Up to 4 a day on average (U(0, 4)): about 2 per customer and day overall.
    per_day = len(data.seconds) / (SMALL.customers * SMALL.days)
    assert 1.0 < per_day < 3.0


def test_every_fraud_kind_follows_its_rule(data: HandbookTransactions) -> None:
    over = data.kind == 1
    assert over.any() and np.all(data.cents[over] > AMOUNT_LIMIT * 100)
    # A compromised terminal: every transaction while it is compromised is fraud (of kind 2 or,
    # when a compromised card was also multiplied there, kind 3).
    terminal = data.terminal[data.kind == 2][0]
    days = data.day[(data.terminal == terminal) & (data.kind == 2)]
    window = (data.terminal == terminal) & (data.day >= days.min()) & (data.day <= days.max())
    assert np.all(data.kind[window] > 0)
    # A compromised card: some of its transactions have their amount multiplied by five.
    card = data.cents[data.kind == 3]
    assert len(card) > 0 and np.all(card % 5 == 0)
    assert 3 < np.median(card) / np.median(data.cents[data.kind == 0]) < 7


def test_written_transactions_are_posguard_input(
    data: HandbookTransactions, tmp_path: Path
) -> None:
    settings = HandbookSettings(
        customers=300, terminals=600, days=60, seed=3, terminals_per_merchant=4
    )
    ids = write_transactions(data, settings, tmp_path / "t.jsonl", 500)
    decoder = EventDecoder("transaction")
    lines = (tmp_path / "t.jsonl").read_bytes().splitlines()
    events = [decoder.decode(line) for line in lines]
    sales = [e for e in events if isinstance(e, Transaction)]
    assert [e.txn_id for e in sales] == ids and len(ids) == 500
    assert [e.amount_minor for e in sales] == data.cents[:500].tolist()
    # Four terminals per merchant: a merchant's terminals are numbered within it.
    assert len({e.merchant_id for e in sales}) < len({e.terminal_id for e in sales})


def test_every_fraud_is_confirmed_a_week_later_about_its_own_sale(
    data: HandbookTransactions, tmp_path: Path
) -> None:
    settings = HandbookSettings(
        customers=300, terminals=600, days=60, seed=3, terminals_per_merchant=4
    )
    count = 5000
    ids = write_transactions(data, settings, tmp_path / "t.jsonl", count)
    written = write_feedback(data, settings, tmp_path / "f.jsonl", count)
    sales = {
        s.txn_id: s
        for s in map(
            EventDecoder("transaction").decode, (tmp_path / "t.jsonl").read_bytes().splitlines()
        )
        if isinstance(s, Transaction)
    }
    decoder = EventDecoder("feedback")
    outcomes = [decoder.decode(x) for x in (tmp_path / "f.jsonl").read_bytes().splitlines()]
    assert all(isinstance(f, Feedback) for f in outcomes)
    assert written == len(outcomes) == int((data.kind[:count] > 0).sum()) > 0
    frauds = {ids[i] for i in np.flatnonzero(data.kind[:count] > 0)}
    assert {f.txn_id for f in outcomes if isinstance(f, Feedback)} == frauds
    for f in outcomes:
        assert isinstance(f, Feedback)
        sale = sales[f.txn_id]
        assert f.merchant_id == sale.merchant_id and f.kind == "FRAUD_CONFIRMED"
        assert f.ts - sale.ts == FEEDBACK_DELAY_DAYS * 86_400_000_000
    assert [f.ts for f in outcomes] == sorted(f.ts for f in outcomes)  # as a topic holds them


def test_card_precision_counts_cards_once_and_forgets_those_already_found() -> None:
    day = [0, 0, 0, 0, 1, 1, 1]
    card = [1, 1, 2, 3, 1, 2, 3]
    fraud = [0, 1, 0, 0, 1, 0, 1]
    score = [0.9, 0.1, 0.5, 0.2, 0.9, 0.8, 0.1]
    # Day 0, top 2 cards: 1 (its best score 0.9, and it has a fraud) and 2: precision 1/2.
    # Day 1: card 1 was found already; top 2 of {2, 3}: both, card 3 frauded: 1/2.
    assert card_precision_at_k(day, card, fraud, score, k=2) == pytest.approx(0.5)
    assert card_precision_at_k(day, card, fraud, score, k=1) == pytest.approx(0.5)
