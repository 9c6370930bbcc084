"""Invariants of the file driver and engine, on generated input with many collisions:
few ids (redeliveries and conflicts), few cards and merchants, coarse timestamps (many ties)."""

from __future__ import annotations

import random
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.alerts import Alert, encode_alert
from streams.cardmask import luhn_valid
from streams.config import Config
from streams.config_log import LiveVersion
from streams.deadletter import DeadLetter
from streams.filereader import ReplayReport
from streams.replay import replay
from tests.builders import feedback_doc, line_doc, payout_doc, txn_doc

PAN = "4111111111111111"

txn_docs = st.builds(
    lambda i, t, m, card, kind, status, amount, orig, offset, note: txn_doc(
        f"T{i}",
        t * 30,
        merchant=m,
        terminal=f"{m}-T{i % 2}",
        card=card,
        type=kind,
        status=status,
        amount=amount,
        original=f"T{orig}" if kind != "SALE" else None,
        offset_hours=offset,
        **({"note": f"card {PAN}"} if note else {}),
    ),
    st.integers(0, 14),
    st.integers(0, 3000),
    st.sampled_from(["M1", "M2"]),
    st.sampled_from(["tok_a", "tok_b", "tok_c", PAN]),
    st.sampled_from(["SALE", "SALE", "SALE", "REFUND", "VOID", "REVERSAL"]),
    st.sampled_from(["APPROVED", "APPROVED", "DECLINED", "TIMEOUT"]),
    st.sampled_from([100, 1000, 5000]),
    st.integers(0, 14),
    st.sampled_from([0, 8]),
    st.booleans(),
)
line_docs = st.builds(
    lambda i, txn, t, m, gross, status, batch: line_doc(
        f"S{i}", f"T{txn}", t * 1800, merchant=m, gross=gross, status=status, batch=batch
    ),
    st.integers(0, 8),
    st.integers(0, 16),
    st.integers(0, 120),
    st.sampled_from(["M1", "M2"]),
    st.sampled_from([100, 1000, 5000]),
    st.sampled_from(["SETTLED", "SETTLED", "REJECTED"]),
    st.sampled_from(["B1", "B1", "B2", None]),
)
payout_docs = st.builds(
    lambda i, t, m, amount, batches: payout_doc(
        f"P{i}", amount, t * 3600, merchant=m, batches=batches
    ),
    st.integers(0, 6),
    st.integers(0, 150),
    st.sampled_from(["M1", "M2"]),
    # Nets of one line (gross 100, 1000, 5000 at 0.60 %), of two, a deduction, a debit.
    st.sampled_from([99, 994, 4970, 1093, 5964, 9940, 4000, -994, 12345]),
    st.sampled_from([None, None, ["B1"], ["B2"], ["B1", "B2"], ["B9"]]),
)
"""Pay-outs of the merchants' batches, exact, short, N:1, unknown, reversed; with collisions."""
feedback_docs = st.builds(
    lambda i, txn, t, m, kind: feedback_doc(f"F{i}", f"T{txn}", t * 600, merchant=m, kind=kind),
    st.integers(0, 6),
    st.integers(0, 16),
    st.integers(0, 200),
    st.sampled_from(["M1", "M2"]),
    st.sampled_from(["FRAUD_CONFIRMED", "FRAUD_CONFIRMED", "CHARGEBACK", "LEGITIMATE"]),
)
garbage = st.sampled_from(
    [b"{not json", b"[]", b'{"txn_id": 1}', b'{"amount_minor": 1.5}', b"\xff\xfe", b"null"]
)


def _lines(docs: list[Any], bad: list[bytes], rng: random.Random) -> list[bytes]:
    """Docs sorted by event time (ties keep their generated order), garbage sprinkled in."""
    key = "settled_at"
    for name in ("event_time", "value_date"):
        if docs and name in docs[0]:
            key = name
    encoded = [msgspec.json.encode(d) for d in sorted(docs, key=lambda d: _utc(d[key]))]
    for raw in bad:
        encoded.insert(rng.randrange(len(encoded) + 1), raw)
    return encoded


def _utc(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def _replay(
    txns: list[bytes],
    lines: list[bytes],
    parallel: bool = False,
    config_log: Sequence[LiveVersion] = (),
    payouts: list[bytes] | None = None,
) -> tuple[ReplayReport, list[Alert], list[DeadLetter]]:
    with tempfile.TemporaryDirectory() as tmp:
        tp, sp, pp = Path(tmp) / "t.jsonl", Path(tmp) / "s.jsonl", Path(tmp) / "p.jsonl"
        tp.write_bytes(b"\n".join(txns) + b"\n")
        sp.write_bytes(b"\n".join(lines) + b"\n")
        pp.write_bytes(b"\n".join(payouts or []) + b"\n")
        alerts: list[Alert] = []
        dead: list[DeadLetter] = []
        report = replay(
            tp,
            sp,
            Config(),
            alerts.append,
            dead.append,
            parallel=parallel,
            config_log=config_log,
            payouts=pp if payouts is not None else None,
        )
    return report, alerts, dead


generated_input = given(
    st.lists(txn_docs, max_size=40),
    st.lists(line_docs, max_size=20),
    st.randoms(use_true_random=False),
)
generated_input_with_garbage = given(
    st.lists(txn_docs, max_size=40),
    st.lists(line_docs, max_size=20),
    st.lists(garbage, max_size=4),
    st.randoms(use_true_random=False),
)
common = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@common
@given(
    st.lists(txn_docs, max_size=40),
    st.lists(line_docs, max_size=20),
    st.lists(garbage, max_size=4),
    st.randoms(use_true_random=False),
    st.lists(payout_docs, max_size=8),
)
def test_every_line_is_processed_or_dead_lettered(
    txns: list[Any], lines: list[Any], bad: list[bytes], rng: random.Random, payouts: list[Any]
) -> None:
    t_lines, s_lines = _lines(txns, bad, rng), _lines(lines, [], rng)
    p_lines = _lines(payouts, bad[:1], rng)
    report, _, dead = _replay(t_lines, s_lines, payouts=p_lines)
    processed = report.transactions + report.settlements + report.payouts
    accounted = processed + report.redeliveries + len(dead)
    assert report.lines == len(t_lines) + len(s_lines) + len(p_lines) == accounted
    assert sum(report.dead_letters.values()) == len(dead)


@common
@generated_input
def test_same_input_gives_identical_output(
    txns: list[Any], lines: list[Any], rng: random.Random
) -> None:
    t_lines, s_lines = _lines(txns, [], rng), _lines(lines, [], rng)
    first = _replay(t_lines, s_lines)
    second = _replay(t_lines, s_lines)
    assert first[1] == second[1]
    assert [_portable(d) for d in first[2]] == [_portable(d) for d in second[2]]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@generated_input_with_garbage
def test_the_sidecar_process_changes_nothing(
    txns: list[Any], lines: list[Any], bad: list[bytes], rng: random.Random
) -> None:
    """Terminal health and card velocity in the sidecar (``streams.replay_sidecar``): the same
    alerts in the same order, the same dead letters and counts."""
    t_lines, s_lines = _lines(txns, bad, rng), _lines(lines, [], rng)
    inline = _replay(t_lines, s_lines)
    parallel = _replay(t_lines, s_lines, parallel=True)
    assert parallel[1] == inline[1]
    assert [_portable(d) for d in parallel[2]] == [_portable(d) for d in inline[2]]
    assert parallel[0].alert_events == inline[0].alert_events
    assert parallel[0].final_status == inline[0].final_status


def _portable(letter: DeadLetter) -> tuple[Any, ...]:
    """A dead letter without the (temporary) directory of its source file."""
    return (letter.reason, letter.detail, letter.kind, letter.source.get("line"), letter.raw)


def _shuffle_ties(encoded: list[bytes], key: str, rng: random.Random) -> list[bytes]:
    groups: dict[float, list[bytes]] = {}
    for raw in encoded:
        groups.setdefault(_utc(msgspec.json.decode(raw)[key]), []).append(raw)
    out: list[bytes] = []
    for ts in sorted(groups):
        group = groups[ts][:]
        rng.shuffle(group)
        out.extend(group)
    return out


@common
@generated_input
def test_shuffling_events_with_equal_timestamps_changes_nothing(
    txns: list[Any], lines: list[Any], rng: random.Random
) -> None:
    t_lines, s_lines = _lines(txns, [], rng), _lines(lines, [], rng)
    base = _replay(t_lines, s_lines)
    shuffled = _replay(
        _shuffle_ties(t_lines, "event_time", rng), _shuffle_ties(s_lines, "settled_at", rng)
    )
    assert base[1] == shuffled[1]
    assert [(d.reason, d.detail) for d in base[2]] == [(d.reason, d.detail) for d in shuffled[2]]


_RUN = re.compile(rb"\d{13,19}")


@common
@generated_input
def test_no_card_number_reaches_alerts_or_dead_letters(
    txns: list[Any], lines: list[Any], rng: random.Random
) -> None:
    _, alerts, dead = _replay(_lines(txns, [], rng), _lines(lines, [], rng))
    out = b"".join(encode_alert(a, "now") for a in alerts)
    out += b"".join(msgspec.json.encode(d) for d in dead)
    assert not [m for m in _RUN.findall(out) if luhn_valid(m.decode())]
