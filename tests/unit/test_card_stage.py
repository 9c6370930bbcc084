"""Card velocity behind the repartition: whatever the partitioning and arrival order, the card
stages raise the velocity alerts replay raises (``streams/worker/cards.py``)."""

from __future__ import annotations

import random
import zlib
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.config import Config
from streams.configfile import load_config
from streams.decode import BadInputError, EventDecoder
from streams.engine import Engine
from streams.engine.txn_rules import RoutedRules
from streams.events import Event, Transaction
from streams.simulate import SimulationSettings, write_simulation
from streams.worker.cards import (
    CardStage,
    Sale,
    SaleBatch,
    card_partition,
    encode_batch,
    sale_batches,
)
from tests.builders import MIN, txn
from tests.support.stream import merged_messages

_FOREVER = 1e18


@cache
def _data() -> tuple[Config, list[tuple[int, bytes]]]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="card-stage-") as tmp:
        data = Path(tmp) / "sim"
        write_simulation(data, SimulationSettings(seed=5, days=4, merchants=10))
        rows = [(side, raw) for _, side, raw in merged_messages(data) if side < 2]
        return load_config(data / "config.toml"), rows


def _events(rows: list[tuple[int, bytes]]) -> list[Event]:
    decoders = (EventDecoder("transaction"), EventDecoder("settlement"))
    events = []
    for side, raw in rows:
        try:
            events.append(decoders[side].decode(raw))
        except BadInputError:
            continue
    return events


def _replay_velocity(config: Config, events: list[Event]) -> list[dict[str, Any]]:
    engine = Engine(config)
    for event in events:
        engine.submit(event)
    engine.flush()
    return [msgspec.to_builtins(a) for a in engine.out.alerts if a.type == "VELOCITY"]


def _source_batches(
    config: Config,
    events: list[Event],
    sources: int,
    stages: int,
    tick: int = 1,
    max_bytes: int | None = None,
) -> list[list[tuple[int, SaleBatch]]]:
    """Per source partition (by merchant), the ``(stage, batch)`` messages its worker sends:
    every ``tick`` journal entries (a backlog makes many per tick), the sales they made and the
    clock, split into messages of at most ``max_bytes`` as the worker splits them."""
    engines = [Engine(config, rules=RoutedRules) for _ in range(sources)]
    out: list[list[tuple[int, SaleBatch]]] = [[] for _ in range(sources)]
    seqs = [0] * sources
    pending: list[list[Sale]] = [[] for _ in range(sources)]

    def collect(p: int) -> None:
        engine = engines[p]
        made, engine.out.sales = engine.out.sales, []
        engine.take()
        seq = seqs[p]
        seqs[p] += 1
        pending[p].extend(Sale.of(seq, i, t) for i, t in enumerate(made))

    def emit(p: int, idle: bool = False) -> None:
        clock = engines[p].clock
        assert clock is not None
        sales, pending[p] = pending[p], []
        for q in range(stages):
            part = [sale for sale in sales if card_partition(sale.card_token, stages) == q]
            if max_bytes is None:
                out[p].append((q, SaleBatch(p, clock, part, idle)))
            else:
                out[p].extend((q, b) for b in sale_batches(p, clock, idle, part, max_bytes))

    for event in events:
        p = zlib.crc32(event.merchant_id.encode()) % sources
        engines[p].submit(event)
        collect(p)
        if not seqs[p] % tick:
            emit(p)
    for p, engine in enumerate(engines):
        if engine.clock is not None:
            engine.flush()
            collect(p)
            emit(p, idle=True)
    return out


def _run_stages(
    config: Config, arrivals: list[tuple[int, SaleBatch]], stages: int
) -> list[dict[str, Any]]:
    cards = [CardStage(q, 1, config) for q in range(stages)]
    for token, (q, batch) in enumerate(arrivals):
        cards[q].offer(batch, token, 0.0)
        cards[q].release(0.0, _FOREVER)
    alerts = []
    for stage in cards:
        stage.release(_FOREVER, 1.0)  # the end: a source that never sent anything is waited out
        assert stage.buffered() == 0
        alerts += stage.take().alerts
    return [msgspec.to_builtins(a) for a in alerts]


def _by_id(alerts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts:
        out.setdefault(alert["alert_id"], []).append(alert)
    return out


def test_one_partition_gives_replays_alerts_in_replays_order() -> None:
    config, rows = _data()
    expected = _replay_velocity(config, _events(rows))
    assert expected, "the simulation injects velocity"
    (batches,) = _source_batches(config, _events(rows), 1, 1)
    assert _run_stages(config, batches, 1) == expected


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sources=st.integers(1, 4),
    stages=st.integers(1, 3),
    seed=st.integers(0, 2**32),
    again=st.floats(0.0, 0.3),
    tick=st.sampled_from([1, 1, 7, 300]),
    max_bytes=st.sampled_from([None, 200, 2000]),
)
def test_any_partitioning_and_arrival_order_gives_replays_alerts(
    sources: int, stages: int, seed: int, again: float, tick: int, max_bytes: int | None
) -> None:
    """Sources interleave at random, and some batches arrive twice (a rebuilt source sends
    again what it sent before its journal's published mark). A source may send many sales per
    tick (a backlog), split into messages below the broker's size limit."""
    order = random.Random(seed)
    config, rows = _data()
    expected = _by_id(_replay_velocity(config, _events(rows)))
    per_source = _source_batches(config, _events(rows), sources, stages, tick, max_bytes)
    arrivals: list[tuple[int, SaleBatch]] = []
    cursors = [0] * sources
    while any(c < len(b) for c, b in zip(cursors, per_source, strict=True)):
        p = order.choice([s for s in range(sources) if cursors[s] < len(per_source[s])])
        arrivals.append(per_source[p][cursors[p]])
        if cursors[p] and order.random() < again:
            arrivals.append(per_source[p][cursors[p] - 1])
        cursors[p] += 1
    assert _by_id(_run_stages(config, arrivals, stages)) == expected


def test_a_rebuilt_stage_continues_from_its_journal_and_publishes_nothing_twice() -> None:
    config, rows = _data()
    expected = _replay_velocity(config, _events(rows))
    (batches,) = _source_batches(config, _events(rows), 1, 1)
    half = len(batches) // 2
    first = CardStage(0, 1, config)
    for token, (_, batch) in enumerate(batches[:half]):
        first.offer(batch, token, 0.0)
        first.release(0.0, _FOREVER)
    out = first.take()
    second = CardStage(0, 1, config)
    second.restore(out.journal, published=first.cursor.seq)
    restored = second.take()
    assert restored.alerts == [] and restored.restored == out.alerts
    # The source sends its last few batches again, as a rebuilt source partition would.
    for token, (_, batch) in enumerate(batches[half - 20 :]):
        second.offer(batch, token, 0.0)
        second.release(0.0, _FOREVER)
    got = out.alerts + second.take().alerts
    assert [msgspec.to_builtins(a) for a in got] == expected


def test_alerts_past_the_published_mark_are_published_again() -> None:
    config, rows = _data()
    (batches,) = _source_batches(config, _events(rows), 1, 1)
    stage = CardStage(0, 1, config)
    for token, (_, batch) in enumerate(batches):
        stage.offer(batch, token, 0.0)
        stage.release(0.0, _FOREVER)
    out = stage.take()
    rebuilt = CardStage(0, 1, config)
    rebuilt.restore(out.journal, published=0)
    assert rebuilt.take().alerts == out.alerts


def _sale(seq: int, t_min: float, card: str, merchant: str) -> Sale:
    event = txn(f"S{seq}", t_min * MIN, card=card, merchant=merchant)
    assert isinstance(event, Transaction)
    return Sale.of(seq, 0, event)


def test_a_silent_source_holds_sales_back_only_for_the_grace() -> None:
    stage = CardStage(0, 2, Config())
    sale = _sale(0, 1, "tok_a", "M1")
    stage.offer(SaleBatch(0, sale.ts + MIN * 10**6, [sale]), 7, arrived=10.0)
    stage.release(10.1, 0.25)
    assert stage.buffered() == 1 and stage.take().released == []
    stage.release(10.3, 0.25)
    assert stage.buffered() == 0 and stage.take().released == [7]


def test_a_source_never_heard_of_is_waited_for_longer_than_an_idle_one() -> None:
    """A partition whose worker has not read its first message yet (starting, or slow on a loaded
    machine) is not overtaken after the short grace; once it has said it is idle, it is."""
    stage = CardStage(0, 3, Config())
    sale = _sale(0, 1, "tok_a", "M1")
    stage.offer(SaleBatch(1, sale.ts - 10**6, [], idle=True), 1, arrived=10.0)
    stage.offer(SaleBatch(0, sale.ts + MIN * 10**6, [sale]), 7, arrived=10.0)
    stage.release(10.3, 0.25, 5.0)  # source 1 idle long enough; source 2 never heard of
    assert stage.buffered() == 1 and stage.take().released == []
    stage.release(14.9, 0.25, 5.0)
    assert stage.buffered() == 1
    stage.release(15.1, 0.25, 5.0)
    assert stage.buffered() == 0 and stage.take().released == [7]


def test_a_source_that_is_behind_is_waited_for_however_long_it_takes() -> None:
    """A partition catching up on a backlog (or rebuilding) must not be overtaken: its sales
    would arrive late and be judged out of order."""
    stage = CardStage(0, 2, Config())
    sale = _sale(0, 1, "tok_a", "M1")
    stage.offer(SaleBatch(1, sale.ts - 10**6, [], idle=False), 1, arrived=0.0)
    stage.offer(SaleBatch(0, sale.ts + 1, [sale]), 2, arrived=0.0)
    stage.release(3600.0, 0.25)
    assert stage.take().released == []
    stage.offer(SaleBatch(1, sale.ts - 10**6, [], idle=True), 3, arrived=3600.0)
    stage.release(3600.0, 0.25)
    assert stage.take().released == [2]


def test_a_source_whose_clock_passed_lets_sales_through_at_once() -> None:
    stage = CardStage(0, 2, Config())
    sale = _sale(0, 1, "tok_a", "M1")
    stage.offer(SaleBatch(1, sale.ts, []), 1, arrived=0.0)
    stage.offer(SaleBatch(0, sale.ts + MIN * 10**6, [sale]), 2, arrived=0.0)
    stage.release(0.0, 0.25)
    assert stage.take().released == []  # source 1 may still send a sale at the same time
    stage.offer(SaleBatch(1, sale.ts + 1, []), 3, arrived=0.0)
    stage.release(0.0, 0.25)
    assert stage.take().released == [2]


def test_the_earliest_sale_of_any_source_goes_first() -> None:
    """Five sales of one card at three merchants, from two sources: run in time order, so the
    alert lists them in time order whichever source delivered first."""
    stage = CardStage(0, 2, Config())
    late = [_sale(i, 2 * i + 1, "tok_v", f"M{i % 3}") for i in (1, 3)]
    early = [_sale(i, 2 * i + 1, "tok_v", f"M{i % 3}") for i in (0, 2, 4)]
    clock = early[-1].ts + 1
    stage.offer(SaleBatch(1, clock, late), 1, arrived=0.0)
    stage.release(0.0, 0.25)
    assert stage.take().released == []
    stage.offer(SaleBatch(0, clock, early), 2, arrived=0.0)
    stage.release(0.0, 0.25)
    out = stage.take()
    assert out.released == [2, 1, 2, 1, 2]
    assert out.alerts and out.alerts[-1].txn_ids == ["S0", "S1", "S2", "S3", "S4"]


@settings(max_examples=50, deadline=None)
@given(
    lengths=st.lists(st.tuples(st.integers(1, 300), st.integers(1, 40), st.integers(1, 80))),
    max_bytes=st.integers(100, 5000),
    idle=st.booleans(),
)
def test_sale_batches_stay_below_the_limit_and_only_the_last_carries_the_clock(
    lengths: list[tuple[int, int, int]], max_bytes: int, idle: bool
) -> None:
    sales = [
        Sale(2**40 + n, n, 2**62, "c" * card, "m\u00e9" * merchant, "t" * txn, -(2**62))
        for n, (card, merchant, txn) in enumerate(lengths)
    ]
    batches = sale_batches(3, 2**62, idle, sales, max_bytes)
    assert [sale for batch in batches for sale in batch.sales] == sales
    assert (batches[-1].clock, batches[-1].idle) == (2**62, idle)
    assert all(not b.idle and b.clock == -(2**63) for b in batches[:-1])
    for batch in batches:
        # One sale larger than the limit on its own still goes (a sale is ~100 bytes, a limit
        # is kilobytes at least); otherwise every message stays within it.
        assert len(encode_batch(batch)) <= max_bytes or len(batch.sales) == 1
