from typing import Any

from streams.events import Event
from tests.builders import HOUR, run, txn


def refund(txn_id: str, t: float, original: str, amount: int, **kw: Any) -> Event:
    return txn(txn_id, t, type="REFUND", original=original, amount=amount, **kw)


def test_partial_refunds_adding_up_exactly_are_fine() -> None:
    r = run(txn("A", 0), refund("R1", HOUR, "A", 6_000), refund("R2", 2 * HOUR, "A", 4_000))
    assert r.final() == []


def test_refunds_exceeding_the_sale() -> None:
    r = run(txn("A", 0), refund("R1", HOUR, "A", 6_000), refund("R2", 2 * HOUR, "A", 6_000))
    alert = r.one("REFUND_ANOMALY")
    assert alert.details["reason"] == "EXCEEDS_ORIGINAL"
    assert alert.details["excess_minor"] == 2_000
    assert alert.txn_ids == ["A", "R1", "R2"]


def test_a_third_refund_updates_the_same_alert() -> None:
    r = run(
        txn("A", 0),
        refund("R1", HOUR, "A", 6_000),
        refund("R2", 2 * HOUR, "A", 6_000),
        refund("R3", 3 * HOUR, "A", 100),
    )
    events = [a for a in r.events if a.type == "REFUND_ANOMALY"]
    assert len({a.alert_id for a in events}) == 1
    assert events[-1].txn_ids == ["A", "R1", "R2", "R3"]


def test_declined_refunds_do_not_count() -> None:
    r = run(
        txn("A", 0),
        refund("R1", HOUR, "A", 10_000),
        refund("R2", 2 * HOUR, "A", 10_000, status="DECLINED"),
    )
    assert r.final() == []


def test_refund_of_unknown_original() -> None:
    alert = run(refund("R", 0, "NOPE", 500)).one("REFUND_ANOMALY")
    assert alert.details["reason"] == "UNKNOWN_ORIGINAL"
    assert alert.txn_ids == ["R"]


def test_refund_of_another_merchants_sale_is_unknown_original() -> None:
    r = run(txn("A", 0, merchant="M2"), refund("R", HOUR, "A", 500))
    assert r.one("REFUND_ANOMALY").details["reason"] == "UNKNOWN_ORIGINAL"


def test_refund_of_a_declined_sale_or_of_a_refund_is_unknown_original() -> None:
    declined = run(txn("A", 0, status="DECLINED"), refund("R", HOUR, "A", 500))
    of_refund = run(txn("A", 0), refund("R1", HOUR, "A", 500), refund("R2", 2 * HOUR, "R1", 100))
    assert declined.one("REFUND_ANOMALY").details["reason"] == "UNKNOWN_ORIGINAL"
    assert of_refund.one("REFUND_ANOMALY").txn_ids == ["R2", "R1"]


def test_voided_refund_no_longer_counts() -> None:
    r = run(
        txn("A", 0),
        refund("R1", HOUR, "A", 10_000),
        txn("V", HOUR + 60, type="VOID", original="R1"),
        refund("R2", 2 * HOUR, "A", 10_000),
    )
    assert "REFUND_ANOMALY" not in r.types()


def test_refund_outside_retention_is_unknown_original() -> None:
    from streams.configfile import config_from_mapping

    cfg = config_from_mapping({"retention": {"evidence": "2d"}})
    r = run(
        txn("A", 0),
        txn("B", 3 * 24 * HOUR, card="tok_b"),
        refund("R", 3 * 24 * HOUR + 5, "A", 10),
        config=cfg,
    )
    assert r.one("REFUND_ANOMALY").details["reason"] == "UNKNOWN_ORIGINAL"
