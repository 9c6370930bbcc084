"""Snapshots: a partition loaded from a snapshot and the journal written after it goes on exactly
as one that never stopped, wherever the snapshot was taken; a snapshot of another format or
configuration is refused, never half loaded."""

from __future__ import annotations

import base64
import contextlib
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.alerts import Alert
from streams.config import Config
from streams.engine.snapshot import SnapshotRefusedError
from streams.rules.refund_rate import RefundRateConfig
from streams.simulate import SimulationSettings, generate, input_rows, payout_rows
from streams.worker.journal import decode_entry
from streams.worker.merge import FEEDBACK, PAYOUTS, SIDES
from streams.worker.pipeline import Output, PartitionPipeline
from tests.builders import line_doc, txn_doc
from tests.unit.test_properties import common, feedback_docs, line_docs, payout_docs, txn_docs
from tests.unit.test_stream_pipeline import (
    TOPICS,
    _as_arrived,
    _collect,
    _contents,
    _final,
    _velocity,
)


def _config() -> Config:
    """Every rule on, REFUND_RATE too, so every rule's state goes through the snapshot."""
    config = Config()
    return replace(config, rules={**config.rules, "refund_rate": RefundRateConfig(enabled=True)})


class _Run:
    """Feeds a pipeline both topics in a seeded random interleaving, and can take a snapshot
    once ``snapshot_after`` messages were delivered (at the first moment one can be taken)."""

    def __init__(
        self,
        txns: list[bytes],
        lines: list[bytes],
        seed: int,
        outcomes: list[bytes] | None = None,
        payouts: list[bytes] | None = None,
    ) -> None:
        self.messages = (txns, lines, outcomes or [], payouts or [])
        self.next = [0] * len(SIDES)
        self.rng = random.Random(seed)

    def caught_up(self, side: int) -> bool:
        return self.next[side] >= len(self.messages[side])

    def feed(
        self,
        pipe: PartitionPipeline,
        stop_after: int | None = None,
        snapshot_after: int | None = None,
    ) -> tuple[Output, bytes | None, int]:
        """What the pipeline emitted, the snapshot taken (or None) and at which sequence."""
        out = Output()
        taken: bytes | None = None
        taken_at = 0
        delivered = 0
        while not all(self.caught_up(s) for s in SIDES):
            if stop_after is not None and delivered >= stop_after:
                return out, taken, taken_at
            side = self.rng.choice([s for s in SIDES if not self.caught_up(s)])
            offset = self.next[side]
            pipe.offer(side, offset, self.messages[side][offset])
            self.next[side] += 1
            delivered += 1
            pipe.release(self.caught_up)
            _collect(out, pipe.take())
            if taken is None and snapshot_after is not None and delivered >= snapshot_after:
                taken = pipe.snapshot()
                taken_at = pipe.seq
        pipe.flush_idle()
        _collect(out, pipe.take())
        return out, taken, taken_at


def _uninterrupted(
    txns: list[bytes],
    lines: list[bytes],
    seed: int,
    outcomes: list[bytes] | None = None,
    payouts: list[bytes] | None = None,
) -> list[Alert]:
    pipe = PartitionPipeline(0, _config(), TOPICS)
    out, _, _ = _Run(txns, lines, seed, outcomes, payouts).feed(pipe)
    return out.alerts + _velocity(out.sales)


def _crash_and_take_over(
    txns: list[bytes],
    lines: list[bytes],
    seed: int,
    snapshot_after: int,
    crash_after: int,
    load: Callable[[PartitionPipeline, bytes], int] = PartitionPipeline.load_snapshot,
    outcomes: list[bytes] | None = None,
    payouts: list[bytes] | None = None,
) -> tuple[list[Alert], int, bool]:
    """Alerts emitted by a worker that took a snapshot and was killed, then by the one that
    took over from that snapshot and the journal after it (and got everything again from
    Kafka); how many journal entries it fed again; whether a snapshot was taken at all."""
    first = PartitionPipeline(0, _config(), TOPICS)
    run = _Run(txns, lines, seed, outcomes, payouts)
    before, taken, taken_at = run.feed(first, crash_after, snapshot_after)
    second = PartitionPipeline(0, _config(), TOPICS)
    published = first.seq  # a snapshot is written after what its entries made is published
    journal = [(seq, decode_entry(v)) for seq, v in before.journal]
    if taken is not None:
        start = load(second, taken)
        assert start == taken_at
        journal = [(seq, entry) for seq, entry in journal if seq >= start]
    second.restore(journal, published)
    after = Output()  # not take()'s own: an empty one is handed over and kept
    _collect(after, second.take())
    # Redelivered from the start, in another interleaving.
    again = _Run(txns, lines, seed + 1, outcomes, payouts)
    rest, _, _ = again.feed(second)
    _collect(after, rest)
    # Everything delivered again is acknowledged, what the snapshot held once it is released.
    assert (
        sorted(set(after.done))
        == sorted(after.done)
        == [(side, offset) for side in SIDES for offset in range(len(run.messages[side]))]
    )
    emitted = before.alerts + after.alerts + _velocity(before.sales + after.sales)
    return emitted, len(journal), taken is not None


@common
@given(
    st.lists(txn_docs, max_size=40),
    st.lists(line_docs, max_size=20),
    st.lists(st.sampled_from((0, 0, 0, 600, -900, 3 * 86400, -400 * 86400)), max_size=40),
    st.integers(0, 2**32),
    st.integers(0, 60),
    st.integers(0, 60),
    st.lists(feedback_docs, max_size=8),
    st.lists(payout_docs, max_size=8),
)
def test_a_snapshot_taken_anywhere_then_a_crash_anywhere_changes_no_alert(
    txns: list[Any],
    lines: list[Any],
    offsets: list[int],
    seed: int,
    snapshot_after: int,
    crash_after: int,
    outcomes: list[Any],
    payouts: list[Any],
) -> None:
    t_lines = _as_arrived(txns, offsets)
    s_lines = _as_arrived(lines, [], "settled_at")
    f_lines = _as_arrived(outcomes, [], "known_at")
    p_lines = _as_arrived(payouts, [], "value_date")
    expected = _uninterrupted(t_lines, s_lines, seed, f_lines, p_lines)
    crash_after = max(crash_after, snapshot_after)
    emitted, _, _ = _crash_and_take_over(
        t_lines, s_lines, seed, snapshot_after, crash_after, outcomes=f_lines, payouts=p_lines
    )
    assert _final(emitted) == _final(expected)
    assert _contents(emitted) <= _contents(expected)


@cache
def _fleet() -> tuple[list[bytes], list[bytes]]:
    """A simulated fleet with every fault the simulator knows: wrong clocks, bad input,
    duplicate settlements, refunds, terminal faults, card patterns."""
    world = generate(SimulationSettings(seed=5, days=4, merchants=12))
    txn_rows, line_rows = input_rows(world)
    return [raw for _, _, raw in txn_rows], [raw for _, _, raw in line_rows]


@cache
def _fleet_payouts() -> list[bytes]:
    """The same fleet's pay-outs: late, missing, short, unexplained, reversed."""
    world = generate(SimulationSettings(seed=5, days=4, merchants=12))
    return [raw for _, _, raw in payout_rows(world)]


@pytest.mark.parametrize("at", [0.2, 0.5, 0.9])
def test_a_simulated_fleet_goes_on_from_a_snapshot_as_if_never_stopped(at: float) -> None:
    txns, lines = _fleet()
    payouts = _fleet_payouts()
    expected = _uninterrupted(txns, lines, 7, payouts=payouts)
    total = len(txns) + len(lines) + len(payouts)
    emitted, fed_again, taken = _crash_and_take_over(
        txns, lines, 7, int(total * at), int(total * at) + 300, payouts=payouts
    )
    assert taken
    # The journal after the snapshot (what it released of the 300 messages, and of those it
    # held at the snapshot), not the journal before it.
    assert fed_again < total * at / 2
    assert _final(emitted) == _final(expected)
    assert _contents(emitted) <= _contents(expected)
    assert len(expected) > 50


def _outcomes(txns: list[bytes]) -> list[bytes]:
    """Every 40th approved sale of the fleet confirmed fraud a day later, every 120th found
    legitimate two days later, in the order they became known."""
    found = []
    for k, raw in enumerate(txns):
        with contextlib.suppress(msgspec.DecodeError, UnicodeDecodeError):  # bad input too
            doc = msgspec.json.decode(raw)
            if not isinstance(doc, dict) or doc.get("type") != "SALE" or k % 40:
                continue
            moment = datetime.fromisoformat(doc["event_time"]) + timedelta(days=1)
            kind = "LEGITIMATE" if k % 120 == 0 else "FRAUD_CONFIRMED"
            known = moment + timedelta(days=1) if kind == "LEGITIMATE" else moment
            found.append(
                (
                    known,
                    {
                        "feedback_id": f"F{k}",
                        "txn_id": doc["txn_id"],
                        "merchant_id": doc["merchant_id"],
                        "kind": kind,
                        "known_at": known.isoformat(),
                    },
                )
            )
    found.sort(key=lambda item: item[0])
    return [msgspec.json.encode(doc) for _, doc in found]


def test_a_snapshot_holds_the_state_exactly() -> None:
    """Loaded and taken again, a snapshot is the same bytes: nothing is dropped or changed on
    the way (a field a future change forgets shows here first), outcomes and what the features
    learnt from them included."""
    txns, lines = _fleet()
    outcomes = _outcomes(txns)
    pipe = PartitionPipeline(0, _config(), TOPICS)
    total = len(txns) + len(lines) + len(outcomes)
    run = _Run(txns, lines, 3, outcomes)
    _, taken, _ = run.feed(pipe, int(total * 0.6), int(total * 0.6) - 200)
    assert taken is not None
    assert pipe.engine.outcomes.accepted > 20
    assert any(t.outcomes is not None for t in pipe.engine.patterns.tracker.terminals.values())
    again = PartitionPipeline(0, _config(), TOPICS)
    again.load_snapshot(taken)
    assert again.snapshot() == taken


def test_a_snapshot_of_another_configuration_or_format_is_refused_cleanly() -> None:
    txns, lines = _fleet()
    pipe = PartitionPipeline(0, _config(), TOPICS)
    _, taken, _ = _Run(txns, lines, 3).feed(pipe, 3000, 2000)
    assert taken is not None
    other = replace(_config(), retention_us=_config().retention_us // 2)
    fresh = PartitionPipeline(0, other, TOPICS)
    with pytest.raises(SnapshotRefusedError, match="format"):
        fresh.load_snapshot(taken)
    assert fresh.seq == 0 and not fresh.engine.merchants
    older = msgspec.json.decode(taken)
    older[3][0] = "0" + older[3][0][1:]
    with pytest.raises(SnapshotRefusedError, match="format 0"):
        PartitionPipeline(0, _config(), TOPICS).load_snapshot(msgspec.json.encode(older))
    with pytest.raises(SnapshotRefusedError, match="does not decode"):
        PartitionPipeline(0, _config(), TOPICS).load_snapshot(taken[: len(taken) // 2])


def test_no_card_number_reaches_a_snapshot() -> None:
    """A snapshot goes to a changelog topic as public as the journal: the events it holds (the
    open step, what the merge buffers) are kept as their contract fields, bad input masked."""
    pan = "4111111111111111"
    pipe = PartitionPipeline(0, _config(), TOPICS)
    # Nothing is caught up but the (empty) feedback and pay-out topics.
    never: Callable[[int], bool] = lambda side: side in (FEEDBACK, PAYOUTS)  # noqa: E731
    pipe.offer(0, 0, msgspec.json.encode({**txn_doc("TA", 10), "note": f"card {pan}"}))
    pipe.offer(1, 0, msgspec.json.encode({**line_doc("SL", "TA", 20), "note": pan}))
    pipe.release(never)  # TA runs, into the open step
    pipe.offer(0, 1, msgspec.json.encode({**txn_doc("TB", 30), "note": pan}))
    pipe.release(never)  # the line runs; TB waits for the settlements
    pipe.offer(0, 2, b'{"txn_id": "B1", "card_token": "' + pan.encode() + b'"')
    pipe.release(never)  # bad input, behind TB
    pipe.take()
    assert pipe.engine.has_open_step and pipe.buffered(0) == 2
    taken = pipe.snapshot()
    assert taken is not None
    texts = _texts(msgspec.json.decode(taken))
    assert not [t for t in texts if pan.encode() in t]
    assert [t for t in texts if b"411111" in t]  # masked, not dropped
    again = PartitionPipeline(0, _config(), TOPICS)
    again.load_snapshot(taken)
    assert again.snapshot() == taken


def _texts(value: Any) -> list[bytes]:
    """Every string in a decoded snapshot, and what it holds when it is base64 (bytes)."""
    if isinstance(value, str):
        found = [value.encode()]
        with contextlib.suppress(ValueError):
            found.append(base64.b64decode(value, validate=True))
        return found
    if isinstance(value, list | dict):
        items = value.values() if isinstance(value, dict) else value
        return [text for item in items for text in _texts(item)]
    return []
