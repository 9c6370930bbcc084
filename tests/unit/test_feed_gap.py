"""SETTLEMENT_FEED_GAP and the hold on missing-settlement judgments around it."""

from streams.events import Event
from tests.builders import HOUR, line, run, txn

DAY = 24 * HOUR


def test_gap_opens_when_transactions_run_30_hours_ahead_of_settlements() -> None:
    r = run(txn("A", 0), line("S0", "A", HOUR), txn("B", 31 * HOUR + 1, card="tok_b"))
    alert = r.one("SETTLEMENT_FEED_GAP")
    assert alert.severity == "CRITICAL"
    assert alert.status == "OPEN"
    assert alert.merchant_id == "*"
    assert alert.details["lag_seconds"] == 30 * 3600 + 1


def test_exactly_30_hours_is_not_a_gap() -> None:
    r = run(txn("A", 0), line("S0", "A", HOUR), txn("B", 31 * HOUR, card="tok_b"))
    assert "SETTLEMENT_FEED_GAP" not in r.types()


def test_before_any_settlement_the_watermark_counts_from_the_first_transaction() -> None:
    r = run(txn("A", 0), txn("B", 30 * HOUR + 1, card="tok_b"))
    assert r.one("SETTLEMENT_FEED_GAP").status == "OPEN"


def test_one_gap_alert_however_many_transactions_and_merchants() -> None:
    events = [txn("A", 0), line("S0", "A", HOUR)]
    events += [
        txn(f"B{i}", 32 * HOUR + i * 60, merchant=f"M{i}", card=f"tok_{i}") for i in range(20)
    ]
    assert len(run(*events).final("SETTLEMENT_FEED_GAP")) == 1


def test_gap_resolves_when_the_feed_catches_up() -> None:
    r = run(
        txn("A", 0),
        line("S0", "A", HOUR),
        txn("B", 32 * HOUR, card="tok_b"),
        line("S1", "B", 33 * HOUR),
    )
    events = [a for a in r.events if a.type == "SETTLEMENT_FEED_GAP"]
    assert [a.status for a in events] == ["OPEN", "RESOLVED"]
    assert events[0].alert_id == events[1].alert_id


def _late_batch_scenario(extra_lines_after_close: list[Event]) -> list[Event]:
    """Day-0 sales; the day-0 batch (due 25.5 h later) stalls while day-1 and day-2 traffic flows;
    the day-1 batch closes the gap; the day-0 batch arrives last."""
    sales = [txn(f"D0-{i}", i * HOUR, card=f"tok_{i}") for i in range(10)]
    day1 = [txn(f"D1-{i}", DAY + i * HOUR, card=f"tok_1{i}") for i in range(10)]
    day2 = [txn(f"D2-{i}", 2 * DAY + 8 * HOUR + i * 60, card=f"tok_2{i}") for i in range(3)]
    day1_batch = [line(f"S1-{i}", f"D1-{i}", 2 * DAY + 7 * HOUR) for i in range(10)]
    day0_batch = [line(f"S0-{i}", f"D0-{i}", 2 * DAY + 12 * HOUR) for i in range(10)]
    return [*sales, *day1, *day1_batch, *extra_lines_after_close, *day2, *day0_batch]


def test_a_late_batch_raises_one_gap_and_no_missing_settlement_noise() -> None:
    r = run(*_late_batch_scenario([]))
    assert r.types() == ["SETTLEMENT_FEED_GAP"]
    assert r.one("SETTLEMENT_FEED_GAP").status == "RESOLVED"


def test_missing_judgments_wait_two_hours_after_the_gap_closes() -> None:
    # A stray line 1 h after the close would otherwise declare every day-0 sale missing.
    stray = line("SX", "D1-0", 2 * DAY + 8 * HOUR)
    r = run(*_late_batch_scenario([stray]))
    assert "MISSING_SETTLEMENT" not in r.types()


def test_missing_judged_after_the_hold_for_lines_that_never_come() -> None:
    events = _late_batch_scenario([])
    events = [e for e in events if getattr(e, "settlement_id", "") != "S0-3"]
    r = run(*events)
    assert [a.txn_ids for a in r.final("MISSING_SETTLEMENT")] == [["D0-3"]]


def test_gap_rule_disabled_means_no_gap_and_no_hold() -> None:
    from streams.configfile import config_from_mapping

    cfg = config_from_mapping({"feed_gap": {"enabled": False}})
    r = run(txn("A", 0), line("S0", "A", HOUR), txn("B", 40 * HOUR, card="tok_b"), config=cfg)
    assert r.final() == []
