"""Cases: the fold of an append-only history, the actions' rules, SLA, and the API helpers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from streams.alerts import Alert
from streams.cases import (
    DEFAULT_SLA_S,
    MAX_HISTORY,
    Case,
    CaseAction,
    CaseError,
    apply,
    case_fields,
    decode_history,
    encode_history,
    fold,
    new_action,
)
from streams.config import ConfigError
from streams.configfile import config_from_mapping
from streams.worker.alertstore import AlertQuery, AlertStore
from streams.worker.case_web import (
    action_from,
    bulk_targets,
    case_summary,
    export_csv,
    precision,
    query_from,
)

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def opened() -> Case:
    return apply(Case(), CaseAction("open", "posguard", at(0)))


def alert(alert_id: str, kind: str = "SUSPICIOUS_PATTERN", severity: str = "MEDIUM") -> Alert:
    return Alert(
        alert_id=alert_id,
        type=kind,
        severity=severity,
        status="OPEN",
        merchant_id="M-1",
        terminal_id="T-1",
        txn_ids=[f"{alert_id}-txn"],
        settlement_ids=[],
        event_time="2026-12-06T08:00:00Z",
        summary="=HYPERLINK(evil)",
        details={},
    )


def test_a_case_is_the_fold_of_its_history() -> None:
    case = opened()
    steps = [
        new_action("acknowledge", "Ana", at(5), comment="looking"),
        new_action("snooze", "Ana", at(6), until=at(60)),
        new_action("assign", "Ana", at(70), owner="Bo"),
        new_action("close", "Bo", at(80), disposition="CONFIRMED", comment="card stolen"),
    ]
    for step in steps:
        case = apply(case, step)
    assert case.state == "CLOSED" and case.owner == "Bo" and case.disposition == "CONFIRMED"
    assert case.comment == "card stolen" and case.closed_at == at(80)
    assert decode_history(encode_history(case)) == case == fold(case.history)


def test_snooze_runs_out_and_the_case_comes_back() -> None:
    case = apply(opened(), new_action("acknowledge", "Ana", at(1)))
    case = apply(case, new_action("snooze", "Ana", at(2), until=at(30)))
    assert case.effective_state(T0 + timedelta(minutes=10)) == "SNOOZED"
    assert case.effective_state(T0 + timedelta(minutes=31)) == "ACKNOWLEDGED"


def test_sla_counts_from_the_open_and_stops_when_snoozed_or_closed() -> None:
    case = opened()
    due = T0 + timedelta(seconds=DEFAULT_SLA_S["HIGH"])
    assert case.sla_due("HIGH", DEFAULT_SLA_S) == due
    late = due + timedelta(minutes=1)
    assert case.overdue("HIGH", DEFAULT_SLA_S, late)
    assert not case.overdue("HIGH", DEFAULT_SLA_S, due - timedelta(minutes=1))
    snoozed = apply(
        case, new_action("snooze", "Ana", at(1), until=(late + timedelta(hours=1)).isoformat())
    )
    assert not snoozed.overdue("HIGH", DEFAULT_SLA_S, late)
    closed = apply(case, new_action("close", "Ana", at(1), disposition="FALSE_POSITIVE"))
    assert not closed.overdue("HIGH", DEFAULT_SLA_S, late)


@pytest.mark.parametrize(
    ("action", "fields", "why"),
    [
        ("close", {}, "disposition"),
        ("close", {"disposition": "MAYBE"}, "disposition"),
        ("close", {"disposition": "DUPLICATE"}, "duplicate_of"),
        ("close", {"disposition": "RECOVERED", "currency": "EUR"}, "recovered_minor"),
        ("close", {"disposition": "RECOVERED", "recovered_minor": 500}, "currency"),
        ("snooze", {}, "until"),
        ("snooze", {"until": "tomorrow"}, "RFC 3339"),
        ("snooze", {"until": "2026-12-06T08:00:00Z"}, "future"),
        ("assign", {}, "owner"),
        ("escalate", {}, "unknown action"),
    ],
)
def test_actions_missing_what_they_need_are_refused(
    action: str, fields: dict[str, object], why: str
) -> None:
    with pytest.raises(CaseError, match=why):
        new_action(action, "Ana", at(0), **fields)  # type: ignore[arg-type]


def test_state_rules_closed_cases_take_only_reopen_or_a_comment() -> None:
    closed = apply(opened(), new_action("close", "Ana", at(1), disposition="CONFIRMED"))
    with pytest.raises(CaseError, match="reopen"):
        apply(closed, new_action("acknowledge", "Bo", at(2)))
    with pytest.raises(CaseError, match="closed case"):
        apply(opened(), new_action("reopen", "Bo", at(2)))
    commented = apply(closed, new_action("comment", "Bo", at(2), comment="refund sent"))
    assert commented.state == "CLOSED" and commented.comment == "refund sent"
    reopened = apply(commented, new_action("reopen", "Bo", at(3), comment="customer disputes"))
    assert reopened.state == "NEW" and reopened.disposition is None
    assert [a.action for a in reopened.history] == ["open", "close", "comment", "reopen"]


def test_money_recovered_and_duplicates_keep_their_facts() -> None:
    case = apply(
        opened(),
        new_action(
            "close", "Ana", at(1), disposition="RECOVERED", recovered_minor=4999, currency="EUR"
        ),
    )
    assert (case.recovered_minor, case.currency) == (4999, "EUR")
    dup = apply(
        opened(), new_action("close", "Ana", at(1), disposition="DUPLICATE", duplicate_of="SP-1")
    )
    assert dup.duplicate_of == "SP-1"


def test_a_card_number_pasted_by_an_operator_is_masked() -> None:
    action = new_action(
        "comment", "Ana 4111 1111 1111 1111", at(1), comment="card 4111111111111111"
    )
    assert "4111111111111111" not in msgspec.json.encode(action).decode().replace(" ", "")
    assert "411111" in action.comment and "1111" in action.comment


def test_history_is_bounded() -> None:
    case = opened()
    for i in range(MAX_HISTORY - 1):
        case = apply(case, new_action("comment", "bot", at(i), comment=str(i)))
    with pytest.raises(CaseError, match="full"):
        apply(case, new_action("comment", "bot", at(1), comment="one more"))


def test_an_acknowledgement_stored_before_cases_reads_as_a_case() -> None:
    old = b'{"by":"Ana","at":"2026-12-01T10:00:00.000Z","note":"asked the acquirer"}'
    case = decode_history(old)
    assert case.state == "ACKNOWLEDGED" and case.owner == "Ana"
    fields = case_fields(case, "HIGH", DEFAULT_SLA_S, T0)
    assert fields["acknowledgement"] == {
        "by": "Ana",
        "at": "2026-12-01T10:00:00.000Z",
        "note": "asked the acquirer",
    }


def _store() -> AlertStore:
    store = AlertStore(keep_us=10**12)
    for i, (kind, severity) in enumerate(
        [("SUSPICIOUS_PATTERN", "MEDIUM"), ("VELOCITY", "MEDIUM"), ("MISSING_SETTLEMENT", "HIGH")]
    ):
        store.apply(alert(f"A{i}", kind, severity), at(0))
        stored = store.get(f"A{i}")
        assert stored is not None
        stored.case = opened()
    return store


def test_filters_by_case_state_owner_and_overdue() -> None:
    store = _store()
    a0 = store.get("A0")
    assert a0 is not None and a0.case is not None
    a0.case = apply(a0.case, new_action("assign", "Ana", at(1), owner="Bo"))
    late = T0 + timedelta(hours=30)
    assert [s.alert.alert_id for s in store.matching(AlertQuery(owner="Bo"), late)] == ["A0"]
    new = {s.alert.alert_id for s in store.matching(AlertQuery(case_state="NEW"), late)}
    assert new == {"A1", "A2"}
    overdue = {s.alert.alert_id for s in store.matching(AlertQuery(overdue=True), late)}
    assert overdue == {"A2"}  # HIGH: 24 h; the MEDIUM ones have 72 h
    with pytest.raises(ValueError, match="case must be one of"):
        query_from({"case": "PENDING"})


def test_precision_per_type_from_closed_cases() -> None:
    store = _store()
    verdicts = [("A0", "CONFIRMED"), ("A1", "FALSE_POSITIVE")]
    for alert_id, disposition in verdicts:
        stored = store.get(alert_id)
        assert stored is not None and stored.case is not None
        stored.case = apply(stored.case, new_action("close", "Ana", at(1), disposition=disposition))
    summary = case_summary(store, T0 + timedelta(hours=30))
    assert summary["states"] == {"NEW": 1, "ACKNOWLEDGED": 0, "SNOOZED": 0, "CLOSED": 2}
    assert summary["overdue"] == {"HIGH": 1}
    assert summary["precision"]["SUSPICIOUS_PATTERN"]["precision"] == 1.0
    assert summary["precision"]["VELOCITY"]["precision"] == 0.0
    assert precision({"CONFIRMED": 3, "FALSE_POSITIVE": 1, "DUPLICATE": 7}) == 0.75
    assert precision({"DUPLICATE": 2}) is None


def test_csv_export_is_one_row_per_alert_and_defuses_formulas() -> None:
    store = _store()
    text = export_csv(store.matching(AlertQuery()), store.sla_s, T0)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["alert_id"] for r in rows) == ["A0", "A1", "A2"]
    assert all(r["summary"] == "'=HYPERLINK(evil)" for r in rows)
    assert {r["case_state"] for r in rows} == {"NEW"}


def test_bulk_targets_follow_the_filter() -> None:
    store = _store()
    assert sorted(bulk_targets(store, {"type": "VELOCITY"})) == ["A1"]
    assert sorted(bulk_targets(store, {"severity": "MEDIUM"})) == ["A0", "A1"]


def test_api_bodies_are_checked() -> None:
    with pytest.raises(CaseError, match="JSON object"):
        action_from(["close"], at(0))
    with pytest.raises(CaseError, match="system"):
        action_from({"action": "open", "by": "Ana"}, at(0))
    with pytest.raises(CaseError, match="integer"):
        action_from(
            {"action": "close", "by": "Ana", "disposition": "RECOVERED", "recovered_minor": "5"},
            at(0),
        )
    done = action_from({"action": "close", "by": "Ana", "disposition": "CONFIRMED"}, at(0))
    assert done.disposition == "CONFIRMED"


def test_sla_comes_from_the_configuration() -> None:
    config = config_from_mapping({"cases": {"sla": {"CRITICAL": "1h", "LOW": "30d"}}})
    assert config.case_sla_s["CRITICAL"] == 3600 and config.case_sla_s["LOW"] == 30 * 86400
    assert config.case_sla_s["HIGH"] == DEFAULT_SLA_S["HIGH"]
    with pytest.raises(ConfigError, match="no severity"):
        config_from_mapping({"cases": {"sla": {"URGENT": "1h"}}})
    with pytest.raises(ConfigError, match=r"cases\.sla"):
        config_from_mapping({"cases": {"sla": {"HIGH": "soon"}}})
