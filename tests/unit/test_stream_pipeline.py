"""The stream driver's pure core: whatever way Kafka delivers both topics, and wherever a worker
is killed and rebuilt from its journal, the engine decides what replay decides."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from streams.alerts import Alert
from streams.config import Config
from streams.config_log import LiveVersion
from streams.worker.cards import CardStage, Sale, SaleBatch
from streams.worker.journal import decode_entry
from streams.worker.merge import (
    FEEDBACK,
    PAYOUTS,
    SETTLEMENTS,
    SIDES,
    TRANSACTIONS,
    Grace,
    TimeMerger,
)
from streams.worker.pipeline import Output, PartitionPipeline
from tests.unit.test_properties import (
    _lines,
    _replay,
    common,
    garbage,
    line_docs,
    payout_docs,
    txn_docs,
)

TOPICS = ("tx", "st", "fb", "po")
_YEAR = 365 * 86400
# Clock errors, in seconds, a generated transaction may carry: none (most), minutes, hours, days
# and years, both ways.
_WRONG_CLOCKS = (0, 0, 0, 0, 0, 0, 600, -900, 8 * 3600, -5 * 3600, 3 * 86400, -400 * 86400, _YEAR)


_DISORDERED: dict[str, st.SearchStrategy[Any]] = {
    "txns": st.lists(txn_docs, max_size=40),
    "lines": st.lists(line_docs, max_size=20),
    "offsets": st.lists(st.sampled_from(_WRONG_CLOCKS), max_size=40),
    "rng": st.randoms(use_true_random=False),
}
"""Logs in generated order (not sorted), some transactions stamped by wrong clocks."""
disordered_input = given(**_DISORDERED)


def _as_arrived(docs: list[Any], offsets: list[int], key: str = "event_time") -> list[bytes]:
    """Docs in generated order (not sorted by time: a log as it arrived), the first ones
    stamped by clocks off by ``offsets``."""
    out = []
    for k, doc in enumerate(docs):
        offset = offsets[k] if k < len(offsets) else 0
        moment = datetime.fromisoformat(doc[key]) + timedelta(seconds=offset)
        out.append(msgspec.json.encode({**doc, key: moment.isoformat()}))
    return out


class Feed:
    """Delivers the input topics' messages to a pipeline in chunks, the way a consumer would."""

    def __init__(
        self,
        txns: list[bytes],
        lines: list[bytes],
        outcomes: list[bytes] | None = None,
        payouts: list[bytes] | None = None,
    ) -> None:
        self.messages = (txns, lines, outcomes or [], payouts or [])
        self.next = [0] * len(SIDES)

    def caught_up(self, side: int) -> bool:
        return self.next[side] >= len(self.messages[side])

    def run(self, pipe: PartitionPipeline, rng: random.Random, stop_after: int | None) -> Output:
        out = Output()
        delivered = 0
        while not all(self.caught_up(s) for s in SIDES):
            side = rng.choice([s for s in SIDES if not self.caught_up(s)])
            for _ in range(rng.randint(1, 5)):
                if self.caught_up(side) or (stop_after is not None and delivered >= stop_after):
                    break
                offset = self.next[side]
                pipe.offer(side, offset, self.messages[side][offset])
                self.next[side] += 1
                delivered += 1
                pipe.release(self.caught_up)
                _collect(out, pipe.take())
            if stop_after is not None and delivered >= stop_after:
                return out
        pipe.flush_idle()
        _collect(out, pipe.take())
        return out


def _collect(into: Output, out: Output) -> None:
    into.journal.extend(out.journal)
    if out.trim_below is not None:
        into.trim_below = out.trim_below
    into.alerts.extend(out.alerts)
    into.dead_letters.extend(out.dead_letters)
    into.restored.extend(out.restored)
    into.done.extend(out.done)
    into.sales.extend(out.sales)


def _velocity(sales: list[Sale], versions: Sequence[LiveVersion] = ()) -> list[Alert]:
    """What the card stage makes of one partition's routed sales (sent again or not)."""
    stage = CardStage(0, 1, Config(), versions)
    stage.offer(SaleBatch(0, 2**62, sales), 0, 0.0)
    stage.release(0.0, float("inf"))
    return stage.take().alerts


def _with_velocity(out: Output) -> list[Alert]:
    """The partition's alerts, then the card stage's (in the stream they go separately)."""
    return out.alerts + _velocity(out.sales)


def _by_stage(alerts: list[Alert]) -> list[Alert]:
    """Replay's alerts in the same arrangement: the partition's, then card velocity."""
    return [a for a in alerts if a.type != "VELOCITY"] + [a for a in alerts if a.type == "VELOCITY"]


def _final(alerts: list[Alert]) -> dict[str, tuple[str, str]]:
    return {a.alert_id: (a.type, a.status) for a in alerts}


def _contents(alerts: list[Alert]) -> set[bytes]:
    return {msgspec.json.encode(a) for a in alerts}


@common
@given(
    st.lists(txn_docs, max_size=40),
    st.lists(line_docs, max_size=20),
    st.lists(garbage, max_size=3),
    st.randoms(use_true_random=False),
    st.lists(payout_docs, max_size=8),
)
def test_any_delivery_interleaving_gives_replays_alerts(
    txns: list[Any], lines: list[Any], bad: list[bytes], rng: random.Random, payouts: list[Any]
) -> None:
    p_lines = _lines(payouts, bad[:1], rng)
    _check_interleaving(_lines(txns, bad, rng), _lines(lines, [], rng), rng, p_lines)


@common
@disordered_input
def test_out_of_order_input_and_wrong_clocks_give_replays_alerts(
    txns: list[Any], lines: list[Any], offsets: list[int], rng: random.Random
) -> None:
    t_lines, s_lines = _as_arrived(txns, offsets), _as_arrived(lines, [], "settled_at")
    _check_interleaving(t_lines, s_lines, rng)


def _check_interleaving(
    t_lines: list[bytes],
    s_lines: list[bytes],
    rng: random.Random,
    p_lines: list[bytes] | None = None,
) -> None:
    _, expected, dead = _replay(t_lines, s_lines, payouts=p_lines)
    pipe = PartitionPipeline(0, Config(), TOPICS)
    out = Feed(t_lines, s_lines, payouts=p_lines).run(pipe, rng, None)
    assert _with_velocity(out) == _by_stage(expected)
    # Across topics, dead letters have no order of their own.
    assert sorted(d.reason for d in out.dead_letters) == sorted(d.reason for d in dead)
    # Every message is acknowledged exactly once, and only once it is journaled.
    assert sorted(out.done) == sorted(
        [(TRANSACTIONS, i) for i in range(len(t_lines))]
        + [(SETTLEMENTS, i) for i in range(len(s_lines))]
        + [(PAYOUTS, i) for i in range(len(p_lines or []))]
    )


@common
@given(
    st.lists(txn_docs, max_size=40),
    st.lists(line_docs, max_size=20),
    st.lists(garbage, max_size=3),
    st.randoms(use_true_random=False),
    st.integers(0, 80),
    st.integers(0, 80),
    st.lists(payout_docs, max_size=8),
)
def test_rebuilt_from_journal_after_a_crash_continues_as_if_never_stopped(
    txns: list[Any],
    lines: list[Any],
    bad: list[bytes],
    rng: random.Random,
    crash_at: int,
    published_at: int,
    payouts: list[Any],
) -> None:
    t_lines, s_lines = _lines(txns, bad, rng), _lines(lines, [], rng)
    _check_crash(t_lines, s_lines, rng, crash_at, published_at, _lines(payouts, [], rng))


@common
@given(**_DISORDERED, crash_at=st.integers(0, 80), published_at=st.integers(0, 80))
def test_out_of_order_and_wrong_clocks_survive_a_crash_at_any_point(
    txns: list[Any],
    lines: list[Any],
    offsets: list[int],
    rng: random.Random,
    crash_at: int,
    published_at: int,
) -> None:
    t_lines, s_lines = _as_arrived(txns, offsets), _as_arrived(lines, [], "settled_at")
    _check_crash(t_lines, s_lines, rng, crash_at, published_at)


def _check_crash(
    t_lines: list[bytes],
    s_lines: list[bytes],
    rng: random.Random,
    crash_at: int,
    published_at: int,
    p_lines: list[bytes] | None = None,
) -> None:
    _, expected, _ = _replay(t_lines, s_lines, payouts=p_lines)
    first = PartitionPipeline(0, Config(), TOPICS)
    before = Feed(t_lines, s_lines, payouts=p_lines).run(first, rng, crash_at)
    trim = before.trim_below or 0
    entries = [(seq, decode_entry(v)) for seq, v in before.journal if seq >= trim]
    published = min(published_at, first.seq)
    second = PartitionPipeline(0, Config(), TOPICS)
    second.restore(entries, published)
    after = second.take()
    # Kafka redelivers from the last committed offset: here, from the very beginning.
    after_feed = Feed(t_lines, s_lines, payouts=p_lines)
    _collect(after, after_feed.run(second, rng, None))
    velocity = _velocity(before.sales + after.sales)
    emitted = before.alerts + after.alerts + velocity
    assert _final(emitted) == _final(expected)
    assert _contents(emitted) <= _contents(expected)
    # Nothing the first worker published is lost, nothing is published twice needlessly.
    assert _final(before.alerts + after.restored + after.alerts + velocity) == _final(expected)


def _only_feedback_read(side: int) -> bool:
    """The (empty) feedback and pay-out topics are read to their end; the others may hold
    more."""
    return side in (FEEDBACK, PAYOUTS)


def test_merger_orders_by_event_time_and_waits_for_a_side_still_reading() -> None:
    merger: TimeMerger[str] = TimeMerger()
    merger.push(TRANSACTIONS, 10, "t10")
    merger.push(TRANSACTIONS, 30, "t30")
    merger.push(SETTLEMENTS, 20, "s20")
    assert [x for _, x in merger.pop_ready(_only_feedback_read)] == ["t10", "s20"]
    # t30 alone: settlements may still hold something earlier; wait until they are caught up.
    assert list(merger.pop_ready(_only_feedback_read)) == []
    assert [x for _, x in merger.pop_ready(lambda s: True)] == ["t30"]


def test_merger_waits_for_the_feedback_topic_too_and_outcomes_wait_their_turn() -> None:
    merger: TimeMerger[str] = TimeMerger()
    merger.push(FEEDBACK, 25, "f25")
    merger.push(TRANSACTIONS, 10, "t10")
    merger.push(SETTLEMENTS, 30, "s30")
    merger.push(TRANSACTIONS, 40, "t40")
    # Then s30 waits: an outcome known earlier may still be on its way (the empty pay-out
    # topic is read to its end).
    assert [x for _, x in merger.pop_ready(lambda s: s == PAYOUTS)] == ["t10", "f25"]
    assert [x for _, x in merger.pop_ready(_only_feedback_read)] == ["s30"]
    assert list(merger.pop_ready(_only_feedback_read)) == []  # t40 waits for the settlements
    assert [x for _, x in merger.pop_ready(lambda s: True)] == ["t40"]
    merger.push(FEEDBACK, 50, "f50")
    merger.push(TRANSACTIONS, 50, "t50")
    assert [x for _, x in merger.pop_ready(lambda s: True)] == ["t50", "f50"]  # ties: lower side


def test_merger_holds_settlements_until_the_payout_topic_is_read() -> None:
    merger: TimeMerger[str] = TimeMerger()
    merger.push(SETTLEMENTS, 30, "s30")
    merger.push(PAYOUTS, 20, "p20")
    merger.push(TRANSACTIONS, 10, "t10")
    assert [x for _, x in merger.pop_ready(lambda s: s in (FEEDBACK, TRANSACTIONS))] == [
        "t10",
        "p20",
    ]
    assert list(merger.pop_ready(lambda s: s != PAYOUTS)) == []  # a pay-out may still come
    assert [x for _, x in merger.pop_ready(lambda s: True)] == ["s30"]


def test_merger_ties_go_to_transactions_and_bad_input_never_waits() -> None:
    merger: TimeMerger[str] = TimeMerger()
    merger.push(SETTLEMENTS, 5, "s5")
    merger.push(TRANSACTIONS, None, "garbage")
    merger.push(TRANSACTIONS, 5, "t5")
    assert [x for _, x in merger.pop_ready(_only_feedback_read)] == ["garbage", "t5"]
    assert [x for _, x in merger.pop_ready(lambda s: True)] == ["s5"]


def test_merger_holds_a_lone_record_for_the_grace_period() -> None:
    merger: TimeMerger[str] = TimeMerger()
    merger.push(TRANSACTIONS, 10, "t10", arrived=100.0)
    assert list(merger.pop_ready(lambda s: True, Grace(100.05, 0.1, 1.0))) == []
    assert [x for _, x in merger.pop_ready(lambda s: True, Grace(100.1, 0.1, 1.0))] == ["t10"]


def test_merger_holds_longer_while_the_other_side_is_mid_batch() -> None:
    merger: TimeMerger[str] = TimeMerger()
    merger.push(SETTLEMENTS, 10, "s10", arrived=100.0)
    assert [x for _, x in merger.pop_ready(lambda s: True)] == ["s10"]
    merger.push(TRANSACTIONS, 20, "t20", arrived=100.2)
    # Settlements arrived 0.3 s ago: the batch may go on; hold the transaction a full second.
    assert list(merger.pop_ready(lambda s: True, Grace(100.5, 0.1, 1.0))) == []
    assert [x for _, x in merger.pop_ready(lambda s: True, Grace(101.2, 0.1, 1.0))] == ["t20"]


def test_merger_cuts_the_long_hold_short_when_the_broker_confirms_after_arrival() -> None:
    merger: TimeMerger[str] = TimeMerger()
    merger.push(SETTLEMENTS, 10, "s10", arrived=100.0)
    assert [x for _, x in merger.pop_ready(lambda s: True)] == ["s10"]
    merger.push(TRANSACTIONS, 20, "t20", arrived=100.2)
    assert merger.held_back_by(100.2) == (SETTLEMENTS, FEEDBACK, PAYOUTS)  # all empty
    assert merger.held_back_by(100.1) == ()  # not held that long yet
    # Asked before the transaction arrived: the answer may predate settlements written before it.
    early = (float("-inf"), 100.19, float("-inf"))
    assert list(merger.pop_ready(lambda s: True, Grace(100.35, 0.1, 1.0, early))) == []
    # Asked after it arrived, but the short grace is not over yet.
    asked = (float("-inf"), 100.21, float("-inf"))
    assert list(merger.pop_ready(lambda s: True, Grace(100.25, 0.1, 1.0, asked))) == []
    # Both: it goes, long before the long grace; unless the consumer has unread settlements.
    assert list(merger.pop_ready(lambda s: False, Grace(100.31, 0.1, 1.0, asked))) == []
    assert [x for _, x in merger.pop_ready(lambda s: True, Grace(100.31, 0.1, 1.0, asked))] == [
        "t20"
    ]
    assert merger.held_back_by(200.0) == ()


def test_journal_trims_entries_older_than_retention() -> None:
    from tests.builders import txn_doc

    config = Config(retention_us=86400_000_000)
    pipe = PartitionPipeline(0, config, TOPICS)
    for i in range(6000):
        raw = msgspec.json.encode(txn_doc(f"T{i}", i * 120, card=f"c{i}"))
        pipe.offer(TRANSACTIONS, i, raw)
        pipe.release(lambda s: True)
    trim = pipe.take().trim_below
    # 6000 sales two minutes apart span 8.3 days; one day of retention plus two days of margin
    # keeps the last ~3 days (within one sampling step of 1024 entries).
    assert trim is not None and 2000 <= trim <= 6000 - 2160
