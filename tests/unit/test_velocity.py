from streams.events import Event, Transaction
from tests.builders import MIN, run, txn


def sales(
    n: int, step: float, merchants: list[str] | None = None, card: str = "tok_v"
) -> list[Event]:
    return [
        txn(
            f"V{i}",
            i * step,
            card=card,
            amount=1_000 + i,
            merchant=(merchants[i % len(merchants)] if merchants else "M1"),
        )
        for i in range(n)
    ]


def test_five_approved_sales_within_ten_minutes() -> None:
    alert = run(*sales(5, 2 * MIN)).one("VELOCITY")
    assert alert.txn_ids == ["V0", "V1", "V2", "V3", "V4"]
    assert alert.details["reasons"] == ["COUNT"]
    assert alert.details["card_token"] == "tok_v"


def test_four_sales_are_busy_but_fine() -> None:
    assert run(*sales(4, 2 * MIN)).final() == []


def test_five_sales_spread_over_more_than_ten_minutes_are_fine() -> None:
    assert run(*sales(5, 2 * MIN + 31)).final() == []


def test_three_merchants_within_ten_minutes() -> None:
    alert = run(*sales(3, 4 * MIN, ["M1", "M2", "M3"])).one("VELOCITY")
    assert alert.details["reasons"] == ["MERCHANTS"]
    assert alert.details["merchants"] == ["M1", "M2", "M3"]


def test_two_merchants_are_fine() -> None:
    assert run(*sales(4, MIN, ["M1", "M2"])).final() == []


def test_declined_sales_do_not_count() -> None:
    events = [*sales(4, MIN), txn("D", 5 * MIN, card="tok_v", status="DECLINED", amount=5)]
    assert run(*events).final() == []


def test_a_burst_is_one_alert_that_grows() -> None:
    r = run(*sales(8, MIN))
    alerts = r.final("VELOCITY")
    assert len(alerts) == 1
    assert alerts[0].txn_ids == [f"V{i}" for i in range(8)]


def test_a_sale_that_arrives_after_later_ones_still_completes_the_pattern() -> None:
    """The repartition by card may run a sale after later sales of its card (a partition that
    was behind): the card at three merchants within minutes is the same alert, with the id and
    content an in-order run gives."""
    from streams.config import Config
    from streams.engine.outbox import Outbox
    from streams.engine.velocity import Velocity

    in_order = run(*sales(3, 4 * MIN, ["M1", "M2", "M3"])).one("VELOCITY")
    out = Outbox()
    rule = Velocity(Config(), out)
    for t in sorted(
        sales(3, 4 * MIN, ["M1", "M2", "M3"]), key=lambda e: getattr(e, "txn_id", "") != "V2"
    ):
        assert isinstance(t, Transaction)
        rule.on_card_sale(t.ts, t.card_token, t.merchant_id, t.txn_id)  # V2, then V0, V1
    assert [a.alert_id for a in out.alerts] == [in_order.alert_id]
    late = out.alerts[0]
    assert (late.txn_ids, late.summary, late.details) == (
        in_order.txn_ids,
        in_order.summary,
        in_order.details,
    )
    assert (late.merchant_id, late.event_time) == (in_order.merchant_id, in_order.event_time)
