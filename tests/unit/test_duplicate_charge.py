from tests.builders import MIN, run, txn


def test_two_identical_approved_sales_within_two_minutes_raise_one_alert() -> None:
    r = run(txn("A", 0), txn("B", 90))
    alert = r.one("DUPLICATE_CHARGE")
    assert alert.status == "OPEN"
    assert alert.severity == "HIGH"
    assert alert.txn_ids == ["A", "B"]
    assert alert.details["amount_minor"] == 10_000
    assert "100.00 CNY" in alert.summary


def test_exactly_120_seconds_apart_is_a_duplicate_121_is_not() -> None:
    assert run(txn("A", 0), txn("B", 120)).final("DUPLICATE_CHARGE")
    assert not run(txn("A", 0), txn("B", 121)).final("DUPLICATE_CHARGE")


def test_same_amount_six_minutes_apart_is_not_a_duplicate() -> None:
    assert run(txn("A", 0), txn("B", 6 * MIN)).final() == []


def test_declined_then_approved_retry_is_not_a_duplicate() -> None:
    r = run(txn("A", 0, status="DECLINED"), txn("B", 30))
    assert r.final() == []


def test_timeout_then_approved_retry_is_not_a_duplicate() -> None:
    assert run(txn("A", 0, status="TIMEOUT"), txn("B", 30)).final() == []


def test_different_card_amount_currency_or_merchant_is_not_a_duplicate() -> None:
    assert run(txn("A", 0), txn("B", 10, card="tok_b")).final() == []
    assert run(txn("A", 0), txn("B", 10, amount=10_001)).final() == []
    assert run(txn("A", 0), txn("B", 10, currency="USD")).final() == []
    assert run(txn("A", 0), txn("B", 10, merchant="M2")).final() == []


def test_void_of_one_copy_resolves_the_alert() -> None:
    r = run(txn("A", 0), txn("B", 30), txn("V", 200, type="VOID", original="B"))
    events = [a for a in r.events if a.type == "DUPLICATE_CHARGE"]
    assert [a.status for a in events] == ["OPEN", "RESOLVED"]
    assert events[0].alert_id == events[1].alert_id
    assert events[1].details["resolved_by"] == "V"


def test_reversal_also_resolves() -> None:
    r = run(txn("A", 0), txn("B", 30), txn("R", 200, type="REVERSAL", original="A"))
    assert r.one("DUPLICATE_CHARGE").status == "RESOLVED"


def test_declined_void_does_not_resolve() -> None:
    r = run(txn("A", 0), txn("B", 30), txn("V", 200, type="VOID", status="DECLINED", original="B"))
    assert r.one("DUPLICATE_CHARGE").status == "OPEN"


def test_a_sale_voided_before_the_recharge_is_not_a_duplicate() -> None:
    r = run(txn("A", 0), txn("V", 20, type="VOID", original="A"), txn("B", 50))
    assert r.final() == []


def test_third_copy_joins_the_same_alert_and_one_void_is_not_enough() -> None:
    r = run(
        txn("A", 0),
        txn("B", 30),
        txn("C", 60),
        txn("V", 300, type="VOID", original="C"),
    )
    alert = r.one("DUPLICATE_CHARGE")
    assert alert.txn_ids == ["A", "B", "C"]
    assert alert.status == "OPEN"


def test_alert_id_is_stable_for_the_same_evidence() -> None:
    first = run(txn("A", 0), txn("B", 30)).one("DUPLICATE_CHARGE").alert_id
    again = run(txn("A", 0), txn("B", 30)).one("DUPLICATE_CHARGE").alert_id
    other = run(txn("A2", 0), txn("B", 30)).one("DUPLICATE_CHARGE").alert_id
    assert first == again != other
