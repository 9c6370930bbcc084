"""The worker's alert view (``/api/alerts``) and merchant summaries (``/api/merchants``)."""

from __future__ import annotations

from streams.alerts import Alert
from streams.worker.alertstore import AlertQuery, AlertStore, to_json
from streams.worker.fleet import fleet_totals, merchant_summaries
from tests.builders import HOUR, line, run, txn


def _alert(
    alert_id: str, status: str, when: str, merchant: str = "M1", kind: str = "VELOCITY"
) -> Alert:
    return Alert(
        alert_id=alert_id,
        type=kind,
        severity="MEDIUM",
        status=status,  # type: ignore[arg-type]
        merchant_id=merchant,
        terminal_id="T1" if kind == "TERMINAL_FAULT" else None,
        txn_ids=[f"txn-{alert_id}"],
        settlement_ids=[],
        event_time=when,
        summary=f"{alert_id} {status}",
        details={},
    )


def test_latest_state_wins_and_history_is_kept() -> None:
    store = AlertStore(keep_us=10**15)
    store.apply(_alert("A", "OPEN", "2026-03-01T10:00:00Z"), "d1")
    store.apply(_alert("A", "RESOLVED", "2026-03-01T11:00:00+01:00"), "d2")
    stored = store.get("A")
    assert stored is not None and stored.alert.status == "RESOLVED"
    assert [h["status"] for h in stored.history] == ["OPEN", "RESOLVED"]
    assert to_json(stored)["detected_at"] == "d2"


def test_queries_filter_sort_newest_first_and_paginate() -> None:
    store = AlertStore(keep_us=10**15)
    for i in range(5):
        store.apply(_alert(f"V{i}", "OPEN", f"2026-03-0{i + 1}T00:00:00Z"), "d")
    store.apply(_alert("F", "OPEN", "2026-03-09T00:00:00Z", "M2", "TERMINAL_FAULT"), "d")
    total, page = store.query(AlertQuery(type="VELOCITY", limit=2, offset=1))
    assert total == 5 and [s.alert.alert_id for s in page] == ["V3", "V2"]
    assert store.query(AlertQuery(merchant_id="M2"))[0] == 1
    assert store.query(AlertQuery(terminal_id="T1"))[0] == 1
    assert store.query(AlertQuery(text="TXN-V4"))[1][0].alert.alert_id == "V4"
    assert store.open_by_type()[("TERMINAL_FAULT", "MEDIUM")] == 1


def test_old_resolved_alerts_are_pruned_open_ones_kept() -> None:
    store = AlertStore(keep_us=86400_000_000)
    store.apply(_alert("OLD", "RESOLVED", "2026-01-01T00:00:00Z"), "d")
    store.apply(_alert("OPEN", "OPEN", "2026-01-01T00:00:00Z"), "d")
    for i in range(10_000):
        store.apply(_alert("NEW", "OPEN", "2026-03-01T00:00:00Z"), str(i))
    assert store.get("OLD") is None and store.get("OPEN") is not None


def test_merchant_summary_counts_unsettled_money_by_currency() -> None:
    engine = run(
        txn("T1", 0, amount=1000, currency="EUR"),
        txn("T2", 60, amount=250, currency="EUR", card="tok_b"),
        txn("T3", 120, amount=999, status="DECLINED"),
    ).engine
    open_alerts = [_alert("F", "OPEN", "2026-03-01T00:00:00Z", "M1", "TERMINAL_FAULT")]
    (summary,) = merchant_summaries([engine], open_alerts)
    assert summary.unsettled_count == 2
    assert summary.unsettled_minor == {"EUR": 1250}
    assert summary.terminals_in_fault == ["T1"]
    assert summary.at_risk_minor == {}


def test_money_at_risk_is_what_the_open_alerts_are_about() -> None:
    r = run(
        txn("A", 0, amount=500, currency="EUR"),
        txn("B", 30, amount=500, currency="EUR"),
        txn("D", 60, amount=930, currency="GBP", status="DECLINED", card="tok_d"),
        line("SD", "D", HOUR, gross=930, currency="GBP"),
    )
    (summary,) = merchant_summaries([r.engine], r.final())
    assert summary.at_risk_minor == {"EUR": 500, "GBP": 930}
    assert fleet_totals([summary.at_risk_minor]) == {"EUR": "5.00 EUR", "GBP": "9.30 GBP"}
