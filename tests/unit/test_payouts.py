"""PAYOUT_MISSING, PAYOUT_MISMATCH and UNEXPLAINED_CREDIT: settlement batches against what reached
the merchant's bank account, on the pay-out and settlement watermarks."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from streams.config import Config
from streams.decode import BadInputError, EventDecoder
from streams.engine.views import payout_rule
from streams.events import Event, Payout
from streams.rules.payout_config import PayoutConfig
from streams.rules.payout_match import Batch, exact_match, nearest_match
from streams.rules.payouts import Payouts
from tests.builders import HOUR, Run, line, payout, run, txn

DAY = 24 * HOUR
NET = 10_000 - 60  # one line of gross 100.00 at 0.60 %


def _batch(name: str = "B1", t: float = DAY, n: int = 3, merchant: str = "M1") -> list[Event]:
    """``n`` approved sales and their SETTLED lines in batch ``name`` at ``t``."""
    events: list[Event] = []
    for k in range(n):
        tid = f"{merchant}-{name}-T{k}"
        events.append(txn(tid, t - 20 * HOUR + k * 60, card=f"c{k}", merchant=merchant))
    for k in range(n):
        tid = f"{merchant}-{name}-T{k}"
        events.append(line(f"{merchant}-{name}-S{k}", tid, t, batch=name, merchant=merchant))
    return events


def _payout_alerts(r: Run) -> list[Any]:
    kinds = ("PAYOUT_MISSING", "PAYOUT_MISMATCH", "UNEXPLAINED_CREDIT")
    return [a for a in r.final() if a.type in kinds]


def _ordered(*events: Event) -> list[Event]:
    return sorted(events, key=lambda e: e.ts)


# -- matching -------------------------------------------------------------------------------------


def test_a_payout_naming_its_batch_with_the_batch_net_raises_nothing() -> None:
    r = run(*_batch(), payout("P1", 3 * NET, 2 * DAY, batches=["B1"]))
    assert _payout_alerts(r) == []


def test_one_payout_pays_two_batches_by_their_ids() -> None:
    events = _ordered(*_batch("B1", DAY), *_batch("B2", DAY + HOUR, 2))
    r = run(*events, payout("P1", 5 * NET, 2 * DAY, batches=["B1", "B2"]))
    assert _payout_alerts(r) == []


@pytest.mark.parametrize("amount", [3 * NET, 5 * NET, 4 * NET])
def test_without_batch_ids_a_payout_matches_by_amount(amount: int) -> None:
    """One batch; the two oldest together; any two that add up (here B1 and B3)."""
    events = _ordered(
        *_batch("B1", DAY), *_batch("B2", DAY + HOUR, 2), *_batch("B3", DAY + 2 * HOUR, 1)
    )
    r = run(*events, payout("P1", amount, 2 * DAY))
    assert [a for a in _payout_alerts(r) if a.type != "PAYOUT_MISSING"] == []


def test_exact_match_prefers_one_batch_then_the_oldest_together() -> None:
    a, b, c = (Batch("M1", "EUR", n, net=v, settled_us=k) for k, (n, v) in enumerate(
        [("A", 100), ("B", 250), ("C", 150)]
    ))  # fmt: skip
    assert exact_match(250, [a, b, c], 0) == [b]
    assert exact_match(350, [a, b, c], 0) == [a, b]
    assert exact_match(250 + 150, [a, b, c], 0) == [b, c]
    assert exact_match(999, [a, b, c], 0) is None
    assert exact_match(101, [a, b, c], 1) == [a]


def test_nearest_match_takes_the_closest_within_the_share() -> None:
    a, b = Batch("M1", "EUR", "A", net=1000), Batch("M1", "EUR", "B", net=5000)
    from fractions import Fraction

    assert nearest_match(4900, [a, b], Fraction(1, 5)) == [b]
    assert nearest_match(5900, [a, b], Fraction(1, 5)) == [a, b]
    assert nearest_match(20_000, [a, b], Fraction(1, 5)) is None


# -- mismatch ---------------------------------------------------------------------------------


def test_a_short_payout_names_the_line_left_out() -> None:
    r = run(*_batch(), payout("P1", 2 * NET, 2 * DAY, batches=["B1"]))
    alert = r.one("PAYOUT_MISMATCH")
    assert alert.status == "OPEN" and alert.severity == "HIGH"
    assert alert.details["difference_minor"] == -NET
    assert alert.details["payout_ids"] == ["P1"]
    (why,) = alert.details["explanation"]
    assert why["kind"] == "LINES_NOT_PAID"
    assert len(alert.settlement_ids) == 1 and alert.settlement_ids == why["settlement_ids"]
    assert alert.settlement_ids[0].startswith("M1-B1-S")
    assert "is in the batch but not in the pay-out" in alert.summary


def test_a_payout_at_another_fee_rate_is_explained_by_the_rate() -> None:
    # 1.50 % of 100.00 is 1.50: each line nets 98.50 instead of 99.40.
    r = run(*_batch(), payout("P1", 3 * (10_000 - 150), 2 * DAY))
    alert = r.one("PAYOUT_MISMATCH")
    (why,) = alert.details["explanation"]
    assert why["kind"] == "FEE_OFF_SCHEDULE"
    assert why["fee_rate"] == "1.50%"
    assert sorted(alert.settlement_ids) == ["M1-B1-S0", "M1-B1-S1", "M1-B1-S2"]


def test_a_deduction_no_line_explains_is_named_as_such() -> None:
    r = run(*_batch(), payout("P1", 3 * NET - 2_500, 2 * DAY, batches=["B1"]))
    (why,) = r.one("PAYOUT_MISMATCH").details["explanation"]
    assert why == {
        "kind": "DEDUCTION",
        "settlement_ids": [],
        "amount_minor": 2_500,
        "text": why["text"],
    }
    assert "25.00 CNY" in why["text"]


def test_a_batch_paid_twice_is_a_mismatch_naming_the_first_payout() -> None:
    r = run(
        *_batch(),
        payout("P1", 3 * NET, 2 * DAY, batches=["B1"]),
        payout("P2", 3 * NET, 2 * DAY + HOUR, batches=["B1"]),
    )
    alert = r.one("PAYOUT_MISMATCH")
    assert alert.details["payout_id"] == "P2"
    kinds = [why["kind"] for why in alert.details["explanation"]]
    assert kinds == ["ALREADY_PAID", "SURPLUS"]
    assert "already paid by P1" in alert.summary


def test_a_payout_naming_a_settled_and_an_unknown_batch_is_judged_with_what_settled() -> None:
    r = run(
        *_batch(),
        payout("P1", 3 * NET, 2 * DAY, batches=["B1", "B404"]),
        line("SX", "TX", 5 * DAY, merchant="M9"),  # the settlement watermark moves on
    )
    alert = r.one("PAYOUT_MISMATCH")
    kinds = [why["kind"] for why in alert.details["explanation"]]
    assert kinds == ["BATCH_NOT_SETTLED"]
    assert alert.details["batch_ids"] == ["B1", "B404"]


# -- missing ----------------------------------------------------------------------------------


def _other_merchant_paid_until(t: float) -> list[Event]:
    """Another merchant's batch and a pay-out on ``t``: the pay-out watermark reaches ``t``."""
    return [
        *_batch("BX", DAY, 1, merchant="M2"),
        payout("Q1", NET, t, merchant="M2", batches=["BX"]),
    ]


def test_an_unpaid_batch_is_missing_once_the_payout_watermark_passes_48_hours() -> None:
    at_deadline = run(*_ordered(*_batch(), *_other_merchant_paid_until(3 * DAY)))
    assert _payout_alerts(at_deadline) == []
    r = run(*_ordered(*_batch(), *_other_merchant_paid_until(3 * DAY + 1)))
    alert = r.one("PAYOUT_MISSING")
    assert alert.status == "OPEN" and alert.merchant_id == "M1"
    assert alert.details["net_minor"] == 3 * NET and alert.details["line_count"] == 3
    assert sorted(alert.settlement_ids) == ["M1-B1-S0", "M1-B1-S1", "M1-B1-S2"]


def test_a_late_payout_resolves_the_missing_alert() -> None:
    events = _ordered(*_batch(), *_other_merchant_paid_until(4 * DAY))
    r = run(*events, payout("P1", 3 * NET, 5 * DAY))
    alert = r.one("PAYOUT_MISSING")
    assert alert.status == "RESOLVED"
    assert alert.details["paid_by"] == "P1"
    assert [a.type for a in r.events if "PAYOUT" in a.type] == ["PAYOUT_MISSING"] * 2


def test_nothing_is_missing_before_any_payout_arrives() -> None:
    r = run(*_batch(), line("SX", "TX", 30 * DAY, merchant="M9"))
    assert _payout_alerts(r) == []


def test_a_late_statement_is_no_alert_per_batch() -> None:
    """The pay-outs stop for a week while settlements go on (the feed stalls); then the late
    statements arrive, one merchant's ahead of another's: no batch is declared missing."""
    events: list[Event] = []
    for day in range(1, 9):
        for m in ("M1", "M2"):
            events += _batch(f"B{day}", day * DAY, 1, merchant=m)
    events = _ordered(*events)
    first = [payout(f"{m}-P1", NET, 2 * DAY, merchant=m, batches=["B1"]) for m in ("M1", "M2")]
    late = [
        payout(f"{m}-P{day}", NET, (day + 1) * DAY, merchant=m, batches=[f"B{day}"])
        for m in ("M2", "M1")  # M2's statement first: its value dates run ahead of M1's
        for day in range(2, 9)
    ]
    engine_events = events[: len(events) // 8 * 2] + first + events[len(events) // 8 * 2 :] + late
    r = run(*engine_events)
    assert _payout_alerts(r) == []
    assert not [a for a in r.events if a.type == "PAYOUT_MISSING"]


def test_rejected_lines_are_in_no_batch() -> None:
    events = [*_batch(), txn("TR", DAY - HOUR, card="cr"), line("SR", "TR", DAY, status="REJECTED")]
    r = run(*_ordered(*events), payout("P1", 3 * NET, 2 * DAY, batches=["B1"]))
    assert _payout_alerts(r) == []


def test_lines_without_a_batch_id_form_one_batch_per_utc_day() -> None:
    events = _ordered(*(
        ev for k in range(2) for ev in (
            txn(f"T{k}", DAY - HOUR + k, card=f"c{k}"),
            line(f"S{k}", f"T{k}", DAY + k * HOUR, batch=None),
        )
    ))  # fmt: skip
    r = run(*events, payout("P1", 2 * NET, 2 * DAY), *_other_merchant_paid_until(5 * DAY))
    assert _payout_alerts(r) == []
    unpaid = run(*events, *_other_merchant_paid_until(5 * DAY))
    alert = unpaid.one("PAYOUT_MISSING")
    assert alert.details["batch_id"].startswith("day ")
    assert "UTC day" in alert.summary


# -- unexplained credits, debits, reversals ---------------------------------------------------


def test_a_credit_paying_no_batch_is_unexplained_once_settlements_pass_48_hours() -> None:
    credit = payout("U1", 12_345, 2 * DAY)
    assert _payout_alerts(run(*_batch(), credit, line("SX", "TX", 4 * DAY, merchant="M9"))) == []
    r = run(*_batch(), credit, line("SX", "TX", 4 * DAY + 1, merchant="M9"))
    alert = r.one("UNEXPLAINED_CREDIT")
    assert alert.severity == "MEDIUM" and alert.status == "OPEN"
    assert alert.details["amount_minor"] == 12_345 and alert.details["payout_ids"] == ["U1"]


def test_an_unexplained_credit_resolves_when_its_batch_settles() -> None:
    r = run(
        payout("P1", 3 * NET, 2 * DAY, batches=["B1"]),
        line("SX", "TX", 5 * DAY, merchant="M9"),
        *_batch("B1", 5 * DAY + HOUR),
    )
    alert = r.one("UNEXPLAINED_CREDIT")
    assert alert.status == "RESOLVED"
    assert _payout_alerts(r) == [alert]


def test_bank_charges_raise_nothing() -> None:
    r = run(*_batch(), payout("C1", -1_250, 2 * DAY), line("SX", "TX", 9 * DAY, merchant="M9"))
    assert _payout_alerts(r) == []


def test_a_reversed_credit_leaves_its_batch_unpaid() -> None:
    events = [
        *_batch(),
        payout("P1", 3 * NET, 2 * DAY, batches=["B1"]),
        payout("R1", -3 * NET, 2 * DAY + HOUR, batches=["B1"]),
        *_other_merchant_paid_until(4 * DAY),
    ]
    r = run(*_ordered(*events))
    assert r.one("PAYOUT_MISSING").status == "OPEN"
    paid_again = run(*_ordered(*events, payout("P2", 3 * NET, 5 * DAY, batches=["B1"])))
    assert paid_again.one("PAYOUT_MISSING").status == "RESOLVED"
    assert [a.type for a in _payout_alerts(paid_again)] == ["PAYOUT_MISSING"]


def test_a_reversed_unexplained_credit_is_resolved() -> None:
    r = run(
        payout("U1", 777, 2 * DAY),
        line("SX", "TX", 5 * DAY, merchant="M9"),
        payout("R1", -777, 5 * DAY + HOUR),
    )
    alert = r.one("UNEXPLAINED_CREDIT")
    assert alert.status == "RESOLVED" and alert.details["reversed_by"] == "R1"


# -- input ------------------------------------------------------------------------------------


def test_a_redelivered_payout_is_ignored_and_a_conflicting_one_rejected() -> None:
    r = run(
        *_batch(),
        payout("P1", 3 * NET, 2 * DAY, batches=["B1"]),
        payout("P1", 3 * NET, 2 * DAY, batches=["B1"]),
        payout("P1", 3 * NET + 1, 2 * DAY + 60, batches=["B1"]),
    )
    assert _payout_alerts(r) == []
    assert [x.reason for x in r.rejections] == ["CONFLICT"]
    assert "payout_id P1" in r.rejections[0].detail
    assert r.engine.stats.payouts == 1 and r.engine.stats.redeliveries == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"payout_id":"P","merchant_id":"M","amount_minor":1,"currency":"EUR"}',
         "SCHEMA_VIOLATION"),
        (b'{"payout_id":"P","merchant_id":"M","amount_minor":1.5,"currency":"EUR",'
         b'"value_date":"2026-03-02T00:00:00Z"}', "SCHEMA_VIOLATION"),
        (b'{"payout_id":"P","merchant_id":"M","amount_minor":1,"currency":"eur",'
         b'"value_date":"2026-03-02T00:00:00Z"}', "SCHEMA_VIOLATION"),
        (b'{"payout_id":"P","merchant_id":"M","amount_minor":1,"currency":"EUR",'
         b'"value_date":"2026-03-02"}', "SCHEMA_VIOLATION"),
        (b'{"payout_id":"P","merchant_id":"M","amount_minor":1,"currency":"EUR",'
         b'"value_date":"2026-03-02T00:00:00Z","batch_ids":["B","B"]}', "SCHEMA_VIOLATION"),
        (b'{"payout_id":"P","merchant_id":"M","amount_minor":1,"currency":"EUR",'
         b'"value_date":"2026-03-02T00:00:00Z","bank_reference":"4111111111111111"}',
         "CARD_NUMBER"),
        (b'{"payout_id":"P", "merchant_id"', "INVALID_JSON"),
    ],
)  # fmt: skip
def test_bad_payouts_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(BadInputError) as caught:
        EventDecoder("payout").decode(raw)
    assert caught.value.reason == reason


def test_a_payout_keeps_its_ids_exactly() -> None:
    raw = (
        b'{"payout_id":"  ACQ/0001 ","merchant_id":"M\\u00e9","amount_minor":-5,'
        b'"currency":"EUR","value_date":"2026-03-02T00:00:00+01:00","batch_ids":["b 1"]}'
    )
    p = EventDecoder("payout").decode(raw)
    assert isinstance(p, Payout)
    assert (p.payout_id, p.merchant_id, p.batch_ids) == ("  ACQ/0001 ", "Mé", ["b 1"])
    assert p.ts == 1772406000 * 1_000_000


def test_the_rule_can_be_switched_off() -> None:
    config = Config()
    config = replace(config, rules={**config.rules, "payouts": PayoutConfig(enabled=False)})
    r = run(*_batch(), payout("P1", 1, 2 * DAY, batches=["B1"]), config=config)
    assert _payout_alerts(r) == []


def _rule(r: Run) -> Payouts:
    rule = payout_rule(r.engine)
    assert rule is not None
    return rule


def test_a_merchant_whose_statements_stop_is_one_late_feed_not_alerts() -> None:
    events: list[Event] = []
    for day in range(1, 9):
        for m in ("M1", "M2"):
            events += _batch(f"B{day}", day * DAY, 1, merchant=m)
    events += [payout("M1-P1", NET, 2 * DAY, merchant="M1", batches=["B1"])]
    events += [
        payout(f"M2-P{day}", NET, (day + 1) * DAY, merchant="M2", batches=[f"B{day}"])
        for day in range(1, 9)
    ]
    r = run(*_ordered(*events))
    assert _payout_alerts(r) == []
    assert _rule(r).feed.late_statements() == ["M1"]
    assert _rule(r).unpaid_totals() == {"M1": {"CNY": 7 * NET}}


def test_merchants_never_paid_can_be_left_unjudged() -> None:
    events = _ordered(*_batch(), *_other_merchant_paid_until(4 * DAY))
    assert run(*events).one("PAYOUT_MISSING").merchant_id == "M1"
    config = Config()
    off = PayoutConfig(judge_unpaid_merchants=False)
    config = replace(config, rules={**config.rules, "payouts": off})
    assert _payout_alerts(run(*events, config=config)) == []


def test_of_the_fee_rates_that_fit_a_small_batch_the_round_one_is_named() -> None:
    # One line of 15.00: 1.20 % and 1.21 % both round to a fee of 0.18.
    from streams.rules.payout_explain import Line, explain

    why = explain(-9, [Line("S1", 1491, 1500, 9)], "GBP", 0)
    assert why["kind"] == "FEE_OFF_SCHEDULE" and why["fee_rate"] == "1.20%"


def test_a_batch_netting_zero_owes_the_merchant_nothing() -> None:
    events = [
        txn("Z1", DAY - HOUR, card="cz"),
        line("SZ", "Z1", DAY, batch="BZ", gross=0, fee=0, net=0),
        *_other_merchant_paid_until(4 * DAY),
    ]
    assert _payout_alerts(run(*_ordered(*events))) == []


def test_an_empty_list_of_batch_ids_is_matched_by_amount() -> None:
    r = run(*_batch(), payout("P1", 3 * NET, 2 * DAY, batches=[]))
    assert _payout_alerts(r) == []
