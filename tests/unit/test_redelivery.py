"""Exact redeliveries are ignored; the same id with different content is a conflict."""

from tests.builders import HOUR, line, run, txn


def test_exact_redelivery_of_a_sale_is_ignored() -> None:
    r = run(txn("A", 0), txn("A", 0), txn("A", 0))
    assert r.final() == []
    assert r.rejections == []
    assert r.engine.stats.redeliveries == 2
    assert r.engine.stats.transactions == 1


def test_redelivery_later_in_the_stream_is_ignored() -> None:
    r = run(txn("A", 0), txn("B", 60, card="tok_b"), txn("A", 0))
    assert r.final() == [] and r.rejections == []


def test_redelivery_written_in_another_offset_is_the_same_event() -> None:
    r = run(txn("A", 0), txn("A", 0, offset_hours=8))
    assert r.rejections == []
    assert r.engine.stats.redeliveries == 1


def test_redelivered_settlement_is_not_a_duplicate_settlement() -> None:
    r = run(txn("A", 0), line("S1", "A", HOUR), line("S1", "A", HOUR))
    assert r.final() == []


def test_same_txn_id_with_different_content_is_a_conflict() -> None:
    r = run(txn("A", 0), txn("A", 30, amount=99))
    assert [x.reason for x in r.rejections] == ["CONFLICT"]
    assert r.final() == []


def test_conflicting_settlement_line() -> None:
    r = run(txn("A", 0), line("S1", "A", HOUR), line("S1", "A", 2 * HOUR, gross=1))
    assert [x.reason for x in r.rejections] == ["CONFLICT"]
    assert r.final() == []


def test_conflict_in_one_step_keeps_the_same_version_whatever_the_order() -> None:
    a, b = txn("A", 0, amount=100), txn("A", 0, amount=200)
    first = run(a, b)
    second = run(txn("A", 0, amount=200), txn("A", 0, amount=100))
    assert first.rejections[0].event.amount_minor == second.rejections[0].event.amount_minor  # type: ignore[union-attr]
