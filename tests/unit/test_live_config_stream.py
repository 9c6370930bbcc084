"""Live configuration in the stream's pure core: a version known to the partition switches it
where replay with the same change log switches, whatever the delivery interleaving, and a
rebuild from the journal (which records each switch) after a crash at any point agrees."""

from __future__ import annotations

import random
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from streams.alerts import Alert
from streams.config import Config
from streams.config_log import VERSION_KEY, ConfigVersion, LiveVersion, check_version
from streams.worker.journal import CONFIG, decode_entry
from streams.worker.pipeline import Output, PartitionPipeline
from tests.builders import when
from tests.unit.test_properties import _lines, _replay, common, garbage, line_docs, txn_docs
from tests.unit.test_stream_pipeline import (
    TOPICS,
    Feed,
    _by_stage,
    _collect,
    _final,
    _velocity,
)

_CHANGES: list[dict[str, Any]] = [
    {"duplicate_charge": {"window": "30s"}},
    {"velocity": {"max_sales": 2, "distinct_merchants": 2}},
    {"terminal_fault": {"min_attempts": 2, "timeout_ratio": "30%"}, "fees": {"CARD": "0.5%"}},
    {"missing_settlement": {"after": "2h"}, "duplicate_charge": {"enabled": False}},
]

versions_strategy = st.lists(
    st.tuples(st.integers(0, 3000 * 30), st.sampled_from(_CHANGES)), min_size=1, max_size=3
)


def _versions(drawn: list[tuple[int, dict[str, Any]]]) -> list[LiveVersion]:
    return [
        check_version(ConfigVersion(n, when(at), change, "ana", "2026-12-06T10:00:00Z"))
        for n, (at, change) in enumerate(drawn, 1)
    ]


def _docs(alerts: list[Alert]) -> list[Any]:
    return [msgspec.to_builtins(a) for a in alerts]


@common
@given(
    st.lists(txn_docs, max_size=40),
    st.lists(line_docs, max_size=20),
    st.lists(garbage, max_size=2),
    st.randoms(use_true_random=False),
    versions_strategy,
)
def test_a_version_switches_the_stream_where_it_switches_replay(
    txns: list[Any],
    lines: list[Any],
    bad: list[bytes],
    rng: random.Random,
    drawn: list[tuple[int, dict[str, Any]]],
) -> None:
    versions = _versions(drawn)
    t_lines, s_lines = _lines(txns, bad, rng), _lines(lines, [], rng)
    _, expected, dead = _replay(t_lines, s_lines, config_log=versions)
    pipe = PartitionPipeline(0, Config(), TOPICS, versions=versions)
    out = Feed(t_lines, s_lines).run(pipe, rng, None)
    got = out.alerts + _velocity(out.sales, versions)
    assert _docs(got) == _docs(_by_stage(expected))
    assert [d.reason for d in out.dead_letters] == [d.reason for d in dead]


@common
@given(
    st.lists(txn_docs, max_size=40),
    st.lists(line_docs, max_size=20),
    st.randoms(use_true_random=False),
    versions_strategy,
    st.integers(0, 80),
    st.integers(0, 80),
)
def test_a_rebuild_from_the_journal_switches_where_the_live_run_did(
    txns: list[Any],
    lines: list[Any],
    rng: random.Random,
    drawn: list[tuple[int, dict[str, Any]]],
    crash_at: int,
    published_at: int,
) -> None:
    versions = _versions(drawn)
    t_lines, s_lines = _lines(txns, [], rng), _lines(lines, [], rng)
    _, expected, _ = _replay(t_lines, s_lines, config_log=versions)
    first = PartitionPipeline(0, Config(), TOPICS, versions=versions)
    before = Feed(t_lines, s_lines).run(first, rng, crash_at)
    trim = before.trim_below or 0
    entries = [(seq, decode_entry(v)) for seq, v in before.journal if seq >= trim]
    second = PartitionPipeline(0, Config(), TOPICS, versions=versions)
    second.restore(entries, min(published_at, first.seq))
    after = second.take()
    _collect(after, Feed(t_lines, s_lines).run(second, rng, None))
    emitted = before.alerts + after.alerts + _velocity(before.sales + after.sales, versions)
    assert _final(emitted) == _final(expected)
    contents = {msgspec.json.encode(a) for a in expected}
    assert {msgspec.json.encode(a) for a in emitted} <= contents


def test_the_journal_records_the_switch_before_the_event_that_triggered_it() -> None:
    from tests.builders import txn_doc

    versions = _versions([(60, {"duplicate_charge": {"window": "30s"}})])
    txns = [msgspec.json.encode(txn_doc(f"T{i}", i * 50, card="a")) for i in range(4)]
    pipe = PartitionPipeline(0, Config(), TOPICS, versions=versions)
    out = Output()
    for offset, raw in enumerate(txns):
        pipe.offer(0, offset, raw)
    pipe.release(lambda side: True)
    pipe.flush_idle()
    _collect(out, pipe.take())
    kinds = [(e.kind, e.offset) for e in (decode_entry(v) for _, v in out.journal)]
    # T0 (0 s), T1 (50 s), then version 1 (60 s) before T2 (100 s).
    assert kinds[:4] == [(0, 0), (0, 1), (CONFIG, 1), (0, 2)]
    assert pipe.version == 1
    stamps = [a.details.get(VERSION_KEY) for a in out.alerts if a.type == "DUPLICATE_CHARGE"]
    assert stamps == [None], "T0/T1 50 s apart: one duplicate under the 120 s window"
