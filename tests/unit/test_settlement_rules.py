"""MISSING_SETTLEMENT, UNMATCHED_SETTLEMENT, SETTLED_WITHOUT_APPROVAL, AMOUNT_MISMATCH and
DUPLICATE_SETTLEMENT: the transaction/settlement join on event time."""

from tests.builders import HOUR, MIN, line, run, txn


def test_a_sale_settled_in_time_raises_nothing() -> None:
    r = run(
        txn("A", 0), line("S1", "A", 15 * HOUR), txn("Z", 30 * HOUR), line("S2", "Q", 40 * HOUR)
    )
    assert "MISSING_SETTLEMENT" not in r.types()


def test_missing_once_the_settlement_watermark_passes_26_hours() -> None:
    r = run(
        txn("A", 0), txn("B", HOUR), line("SB", "B", 20 * HOUR), line("SX", "B2", 26 * HOUR + 1)
    )
    alert = r.one("MISSING_SETTLEMENT")
    assert alert.txn_ids == ["A"]
    assert alert.status == "OPEN"
    assert alert.details["reason"] == "NO_SETTLEMENT"
    assert alert.details["amount_minor"] == 10_000


def test_watermark_exactly_at_the_deadline_is_not_past_it() -> None:
    r = run(txn("A", 0), line("S0", "zz", 26 * HOUR))
    assert "MISSING_SETTLEMENT" not in r.types()


def test_missing_is_judged_on_the_settlement_feed_not_on_transactions() -> None:
    # Transactions run 28 h ahead but no settlement line passed the deadline: nothing is missing.
    r = run(txn("A", 0), line("S0", "Y", HOUR), txn("B", 28 * HOUR))
    assert "MISSING_SETTLEMENT" not in r.types()


def test_late_settlement_resolves_missing() -> None:
    r = run(txn("A", 0), line("S0", "Y", 27 * HOUR), line("SA", "A", 40 * HOUR))
    events = [a for a in r.events if a.type == "MISSING_SETTLEMENT"]
    assert [a.status for a in events] == ["OPEN", "RESOLVED"]
    assert events[1].settlement_ids == ["SA"]


def test_a_batch_sharing_one_settled_at_is_matched_before_anything_is_missing() -> None:
    # The line for A arrives in the very batch that moves the watermark past A's deadline.
    r = run(txn("A", 0), line("S0", "Y", 27 * HOUR), line("SA", "A", 27 * HOUR))
    assert "MISSING_SETTLEMENT" not in r.types()


def test_rejected_line_raises_missing_with_reason_rejected_at_once() -> None:
    r = run(txn("A", 0), line("SA", "A", 2 * HOUR, status="REJECTED"))
    alert = r.one("MISSING_SETTLEMENT")
    assert alert.details["reason"] == "REJECTED"
    assert alert.settlement_ids == ["SA"]


def test_rejected_then_settled_resolves() -> None:
    r = run(
        txn("A", 0),
        line("SA", "A", 2 * HOUR, status="REJECTED"),
        line("SA2", "A", 30 * HOUR),
    )
    assert r.one("MISSING_SETTLEMENT").status == "RESOLVED"


def test_declined_timeout_and_voided_sales_are_not_expected_to_settle() -> None:
    r = run(
        txn("A", 0, status="DECLINED"),
        txn("B", 10, status="TIMEOUT", card="tok_b"),
        txn("C", 20, card="tok_c"),
        txn("V", 60, type="VOID", original="C", card="tok_c"),
        line("S0", "Y", 40 * HOUR),
    )
    assert "MISSING_SETTLEMENT" not in r.types()


def test_approved_refund_is_expected_to_settle() -> None:
    r = run(
        txn("A", 0),
        line("SA", "A", 10 * HOUR),
        txn("R", 11 * HOUR, type="REFUND", original="A", amount=500),
        line("S0", "Y", 40 * HOUR),
    )
    assert r.one("MISSING_SETTLEMENT").txn_ids == ["R"]


def test_settled_for_a_declined_sale() -> None:
    r = run(txn("A", 0, status="DECLINED"), line("SA", "A", 10 * HOUR))
    alert = r.one("SETTLED_WITHOUT_APPROVAL")
    assert alert.severity == "CRITICAL"
    assert alert.details["reason"] == "DECLINED"
    assert "AMOUNT_MISMATCH" not in r.types()


def test_settled_for_a_timed_out_sale() -> None:
    r = run(txn("A", 0, status="TIMEOUT"), line("SA", "A", 10 * HOUR))
    assert r.one("SETTLED_WITHOUT_APPROVAL").details["reason"] == "TIMEOUT"


def test_settled_for_a_voided_sale_either_order() -> None:
    before = run(txn("A", 0), txn("V", MIN, type="VOID", original="A"), line("SA", "A", 10 * HOUR))
    after = run(
        txn("A", 0), line("SA", "A", 10 * HOUR), txn("V", 11 * HOUR, type="VOID", original="A")
    )
    assert before.one("SETTLED_WITHOUT_APPROVAL").details["reason"] == "CANCELLED"
    assert after.one("SETTLED_WITHOUT_APPROVAL").details["reason"] == "CANCELLED"


def test_a_rejected_line_for_a_declined_sale_is_fine() -> None:
    r = run(txn("A", 0, status="DECLINED"), line("SA", "A", 10 * HOUR, status="REJECTED"))
    assert r.final() == []


def test_unmatched_settlement_once_transactions_pass_one_hour() -> None:
    r = run(line("SX", "GHOST", 0), txn("A", HOUR + 1))
    alert = r.one("UNMATCHED_SETTLEMENT")
    assert alert.settlement_ids == ["SX"]
    assert alert.txn_ids == ["GHOST"]


def test_unmatched_not_before_the_transaction_watermark_passes() -> None:
    r = run(line("SX", "GHOST", 0), txn("A", HOUR))
    assert "UNMATCHED_SETTLEMENT" not in r.types()


def test_settlement_before_its_transaction_matches_when_it_arrives() -> None:
    r = run(line("SA", "A", 0), txn("A", 30 * MIN))
    assert r.final() == []


def test_unmatched_resolves_when_the_transaction_arrives_late() -> None:
    late = txn("A", -2 * HOUR)  # a store-and-forward terminal uploads it late
    r = run(line("SA", "A", 0), txn("B", 2 * HOUR), txn("C", 3 * HOUR, card="tok_c"), late)
    events = [a for a in r.events if a.type == "UNMATCHED_SETTLEMENT"]
    assert [a.status for a in events] == ["OPEN", "RESOLVED"]


def test_settlement_for_another_merchants_txn_id_is_unmatched() -> None:
    r = run(txn("A", 0), line("SA", "A", 10, merchant="M2"), txn("B", 2 * HOUR))
    assert r.one("UNMATCHED_SETTLEMENT").merchant_id == "M2"


def test_amount_mismatch_on_gross() -> None:
    r = run(txn("A", 0), line("SA", "A", HOUR, gross=9_900))
    alert = r.one("AMOUNT_MISMATCH")
    assert alert.details["reasons"] == ["GROSS"]
    assert "99.00 CNY" in alert.summary and "100.00 CNY" in alert.summary


def test_fee_within_one_minor_unit_is_tolerated_two_is_not() -> None:
    ok = run(txn("A", 0), line("SA", "A", HOUR, fee=61, net=10_000 - 61))
    bad = run(txn("A", 0), line("SA", "A", HOUR, fee=62, net=10_000 - 62))
    assert ok.final() == []
    alert = bad.one("AMOUNT_MISMATCH")
    assert alert.details["reasons"] == ["FEE"]
    assert alert.details["expected_fee_minor"] == 60


def test_expected_fee_rounds_half_up_in_integers() -> None:
    # 0.38 % of 250 = 0.95 -> 1 ; 0.60 % of 25 = 0.15 -> 0 ; 0.60 % of 125 = 0.75 -> 1
    r = run(
        txn("A", 0, channel="QR", amount=250, entry_mode="QR"),
        line("SA", "A", HOUR, gross=250, fee=3, net=247),
    )
    assert r.one("AMOUNT_MISMATCH").details["expected_fee_minor"] == 1


def test_net_must_be_gross_minus_fee() -> None:
    r = run(txn("A", 0), line("SA", "A", HOUR, net=9_000))
    assert r.one("AMOUNT_MISMATCH").details["reasons"] == ["NET"]


def test_refund_settles_with_no_fee() -> None:
    r = run(
        txn("A", 0),
        line("SA", "A", HOUR),
        txn("R", 2 * HOUR, type="REFUND", original="A", amount=4_000),
        line("SR", "R", 3 * HOUR, gross=4_000, refund=True),
        line("SRF", "R", 3 * HOUR, gross=4_000, fee=24, net=3_976),
    )
    mismatches = r.final("AMOUNT_MISMATCH")
    assert [a.settlement_ids for a in mismatches] == [["SRF"]]


def test_duplicate_settlement() -> None:
    r = run(txn("A", 0), line("S1", "A", HOUR), line("S2", "A", 25 * HOUR))
    alert = r.one("DUPLICATE_SETTLEMENT")
    assert alert.severity == "CRITICAL"
    assert alert.settlement_ids == ["S1", "S2"]


def test_duplicate_settlement_needs_two_settled_lines() -> None:
    r = run(txn("A", 0), line("S1", "A", HOUR, status="REJECTED"), line("S2", "A", 25 * HOUR))
    assert "DUPLICATE_SETTLEMENT" not in r.types()
