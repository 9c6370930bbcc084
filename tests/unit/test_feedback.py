"""Outcomes as input: the feedback event's contract, redeliveries and conflicts, outcomes that
arrive before their sale, and the features that read them, which never see an outcome before its
``known_at``."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from models.features import FEATURE_NAMES, NO_OUTCOMES, OUTCOME_FEATURES
from streams.config import Config
from streams.deadletter import DeadLetter
from streams.decode import BadInputError, EventDecoder
from streams.engine import Engine
from streams.engine.snapshot import load, take
from streams.events import Event, Feedback
from streams.replay import replay
from streams.training import feature_rows, fraud_labels
from tests.builders import HOUR, feedback, feedback_doc, txn, txn_doc

DAY = 24 * HOUR
_decode = EventDecoder("feedback").decode


def _index(name: str) -> int:
    return FEATURE_NAMES.index(name)


def test_a_feedback_event_decodes_with_its_known_at_as_event_time() -> None:
    f = _decode(json.dumps(feedback_doc("F1", "S1", 90, source="ISSUER")).encode())
    assert isinstance(f, Feedback) and f.fraud and f.source == "ISSUER"
    assert f.ts == f.at == int((f.known_at.timestamp()) * 1_000_000)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kind": "MAYBE"}, "SCHEMA_VIOLATION"),
        ({"known_at": "2024-03-01T10:00:00"}, "SCHEMA_VIOLATION"),  # no offset
        ({"amount_minor": 500}, "SCHEMA_VIOLATION"),  # a chargeback amount needs its currency
        ({"amount_minor": 500, "currency": "eur"}, "SCHEMA_VIOLATION"),
        ({"amount_minor": 0, "currency": "EUR"}, "SCHEMA_VIOLATION"),
        ({"txn_id": "4111111111111111"}, "CARD_NUMBER"),
        ({"feedback_id": ""}, "SCHEMA_VIOLATION"),
    ],
)
def test_bad_feedback_is_refused_with_a_reason(change: dict[str, object], reason: str) -> None:
    doc = {**feedback_doc("F1", "S1", 90), **change}
    with pytest.raises(BadInputError) as refused:
        _decode(json.dumps(doc).encode())
    assert refused.value.reason == reason


def test_a_chargeback_with_its_amount_is_accepted() -> None:
    doc = feedback_doc("F1", "S1", 90, kind="CHARGEBACK", amount_minor=1250, currency="EUR")
    f = _decode(json.dumps(doc).encode())
    assert isinstance(f, Feedback) and f.fraud and f.amount_minor == 1250


def _rows(*events: Event) -> list[list[float]]:
    engine = Engine(Config())
    rows: list[list[float]] = []
    engine.patterns.observe(lambda _t, row, _s: rows.append(row))
    for e in events:
        engine.submit(e)
    engine.flush()
    return rows


def _sale(txn_id: str, t: float, **kw: object) -> Event:
    return txn(txn_id, t, terminal=kw.pop("terminal", "T1"), **kw)


def test_a_confirmation_is_known_to_the_terminal_s_next_sales_and_not_before() -> None:
    rows = _rows(
        _sale("S1", 0, card="tok_a"),
        _sale("S2", DAY, card="tok_b"),  # before the confirmation is known
        feedback("F1", "S1", DAY + 60),
        _sale("S3", DAY + 120, card="tok_c"),
        _sale("S4", 9 * DAY, card="tok_d"),  # out of the 7-day window, in the 28-day one
    )
    frauds_7d, frauds_28d = _index("terminal_frauds_7d"), _index("terminal_frauds_28d")
    since = _index("days_since_terminal_fraud")
    assert [r[frauds_7d] for r in rows] == [0, 0, 1, 0]
    assert [r[frauds_28d] for r in rows] == [0, 0, 1, 1]
    assert rows[1][since] == 365.0 and rows[2][since] == pytest.approx(60 / DAY)
    assert rows[3][_index("terminal_fraud_rate_28d")] == pytest.approx(1 / 3)
    assert rows[2][_index("merchant_frauds_7d")] == 1
    assert rows[2][_index("card_frauds_28d")] == 0  # another card


def test_a_legitimate_outcome_takes_a_confirmation_back() -> None:
    rows = _rows(
        _sale("S1", 0),
        feedback("F1", "S1", 60),
        _sale("S2", 120, card="tok_b"),
        feedback("F2", "S1", 180, kind="LEGITIMATE"),
        _sale("S3", 240, card="tok_c"),
    )
    assert [r[_index("terminal_frauds_1d")] for r in rows] == [0, 1, 0]


def test_a_confirmation_and_its_chargeback_count_once() -> None:
    rows = _rows(
        _sale("S1", 0),
        feedback("F1", "S1", 60),
        feedback("F2", "S1", 90, kind="CHARGEBACK", amount_minor=10_000, currency="CNY"),
        _sale("S2", 120, card="tok_b"),
    )
    assert rows[1][_index("terminal_frauds_1d")] == 1


def test_an_outcome_that_arrives_before_its_sale_is_learnt_when_the_sale_is() -> None:
    rows = _rows(
        feedback("F1", "S1", 0),  # the sale's terminal clock is behind: it is stamped later
        _sale("S1", 30),
        _sale("S2", 60, card="tok_b"),
    )
    assert [r[_index("terminal_frauds_1d")] for r in rows] == [0, 1]


def test_a_redelivered_outcome_is_ignored_and_a_changed_one_is_a_conflict() -> None:
    engine = Engine(Config())
    for e in (_sale("S1", 0), feedback("F1", "S1", 60), feedback("F1", "S1", 60)):
        engine.submit(e)
    engine.submit(feedback("F1", "S1", 60, kind="LEGITIMATE"))
    engine.flush()
    _, rejections = engine.take()
    assert engine.outcomes.redeliveries == 1 and engine.outcomes.accepted == 1
    assert [r.reason for r in rejections] == ["CONFLICT"]
    assert "feedback_id F1" in rejections[0].detail


def test_outcomes_are_forgotten_with_the_evidence() -> None:
    config = Config()
    engine = Engine(config)
    engine.submit(feedback("F1", "NEVER-SEEN", 0))
    engine.submit(_sale("S1", 1))
    later = config.retention_us / 1e6 + 2 * DAY
    engine.submit(_sale("S2", later, card="tok_b"))
    engine.flush()
    assert not engine.outcomes.known and not engine.outcomes.waiting


def test_a_snapshot_keeps_outcomes_and_what_waits_for_its_sale() -> None:
    events = [
        _sale("S1", 0),
        feedback("F1", "S1", 60),
        feedback("F2", "S9", 70),  # its sale comes after the snapshot
        _sale("S2", 120, card="tok_b"),
    ]
    rest = [_sale("S9", 130, card="tok_c"), _sale("S3", 200, card="tok_d")]
    whole = _rows(*(msgspec.structs.replace(e) for e in events + rest))
    engine = Engine(Config())
    engine.patterns.track = True
    for e in events:
        engine.submit(e)
    data = take(engine)
    resumed = Engine(Config())
    resumed.patterns.track = True
    load(resumed, data)
    assert set(resumed.outcomes.known) == {"F1", "F2"} and set(resumed.outcomes.waiting) == {"S9"}
    rows: list[list[float]] = []
    resumed.patterns.observe(lambda _t, row, _s: rows.append(row))
    for e in rest:
        resumed.submit(e)
    resumed.flush()
    assert rows == whole[-len(rows) :]
    assert rows[-1][_index("terminal_frauds_1d")] == 2


def _write(path: Path, docs: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def test_no_row_reads_an_outcome_known_after_its_sale(tmp_path: Path) -> None:
    """Outcomes known later than a sale never change its row: the rows of every sale before a
    cut are the same with the whole feedback file and with the outcomes known before the cut."""
    docs = []
    outcomes = []
    for i in range(60):
        t = i * 4 * HOUR
        docs.append(txn_doc(f"S{i}", t, terminal=f"T{i % 3}", card=f"tok_{i % 7}"))
        if i % 4 == 0:
            outcomes.append(feedback_doc(f"F{i}", f"S{i}", t + (i % 5) * DAY + 600))
    outcomes.sort(key=lambda d: str(d["known_at"]))
    txns = _write(tmp_path / "t.jsonl", docs)
    full_rows, sales = feature_rows(txns, None, Config(), _write(tmp_path / "f.jsonl", outcomes))
    cut_at = 30 * 4 * HOUR
    cut = _write(
        tmp_path / "cut.jsonl",
        [d for d in outcomes if str(d["known_at"]) < str(docs[30]["event_time"])],
    )
    cut_rows, _ = feature_rows(txns, None, Config(), cut)
    first_after = next(i for i, t in enumerate(sales) if t.ts >= sales[0].ts + cut_at * 1e6)
    assert full_rows[:first_after] == cut_rows[:first_after]
    assert full_rows != cut_rows  # the later outcomes do reach later sales
    blind, _ = feature_rows(txns, None, Config())
    columns = [_index(name) for name in OUTCOME_FEATURES]
    assert all(tuple(r[c] for c in columns) == NO_OUTCOMES for r in blind)


def test_replay_dead_letters_bad_feedback_with_its_line(tmp_path: Path) -> None:
    txns = _write(tmp_path / "t.jsonl", [txn_doc("S1", 0)])
    lines = _write(tmp_path / "s.jsonl", [])
    bad = feedback_doc("F2", "S1", 90, kind="NOPE")
    outcomes = _write(tmp_path / "f.jsonl", [feedback_doc("F1", "S1", 60), bad])
    dead: list[DeadLetter] = []
    report = replay(txns, lines, Config(), lambda _a: None, dead.append, feedback=outcomes)
    assert report.outcomes == 1
    assert [(d.kind, d.reason, d.source["line"]) for d in dead] == [
        ("feedback", "SCHEMA_VIOLATION", 2)
    ]


def test_training_labels_follow_the_outcome_known_last(tmp_path: Path) -> None:
    outcomes = _write(
        tmp_path / "f.jsonl",
        [
            feedback_doc("F1", "S1", 60),
            feedback_doc("F2", "S1", 120, kind="LEGITIMATE"),
            feedback_doc("F3", "S2", 60, kind="CHARGEBACK", amount_minor=5, currency="EUR"),
            feedback_doc("F4", "S3", 300, kind="LEGITIMATE"),
            feedback_doc("F5", "S3", 200),  # later in the file, known earlier
        ],
    )
    assert fraud_labels(outcomes) == {("M1", "S2")}
