"""Wrong terminal clocks: reported once, reconciled on the partition's time, moving nothing else
(``streams/engine/clock.py``)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.alerts import Alert
from streams.config import Config
from streams.configfile import load_config
from streams.engine import Engine
from streams.events import Event, Transaction
from streams.money import expected_fee
from streams.replay import replay
from streams.simulate import SimulationSettings, write_simulation
from tests.builders import BASE, HOUR, MIN, Run, line, run, txn

DAY = 24 * HOUR
YEAR = 365 * DAY


def us(seconds: float) -> int:
    """Microseconds since the epoch of BASE + ``seconds`` (the engine's time)."""
    return round((BASE.timestamp() + seconds) * 1_000_000)


def fleet(hours: float = 6, start: float = 0, every: float = 5 * MIN) -> list[Event]:
    """Four merchants with two terminals each selling in turn, every sale settled in a batch
    stamped the next day (the arrival order is the order of time)."""
    sales: list[Event] = []
    lines: list[Event] = []
    k = 0
    t = start
    while t < start + hours * HOUR:
        merchant, terminal = f"M{k % 4}", f"T{k % 8}"
        txn_id = f"S{k:05d}"
        sales.append(txn(txn_id, t, merchant=merchant, terminal=terminal, card=f"tok_{k}"))
        lines.append(line(f"L{k:05d}", txn_id, t + 20 * HOUR, merchant=merchant))
        k += 1
        t += every
    return sales + lines


def with_sale_at(events: list[Event], position: int, *sales: Event) -> list[Event]:
    return [*events[:position], *sales, *events[position:]]


def stray(txn_id: str, true_time: float, offset: float, terminal: str = "TX") -> list[Event]:
    """A sale by a terminal whose clock is ``offset`` seconds off, and its settlement line."""
    sale = txn(txn_id, true_time + offset, merchant="M1", terminal=terminal, card="tok_x")
    return [sale, line(f"L-{txn_id}", txn_id, true_time + 20 * HOUR, merchant="M1")]


def states(r: Run) -> dict[str, tuple[str, str]]:
    return {a.alert_id: (a.type, a.status) for a in r.final()}


def test_a_clean_fleet_raises_nothing() -> None:
    assert run(*fleet()).final() == []


def test_a_year_ahead_is_one_clock_alert_and_nothing_else() -> None:
    events = fleet()
    sale, settled = stray("X1", 2 * HOUR, YEAR)
    # The sale arrives two hours into the day; its line comes with the batch.
    r = run(*with_sale_at(events[:72], 24, sale), *events[72:], settled)
    clock = r.one("TERMINAL_CLOCK")
    assert clock.status == "OPEN"
    assert (clock.merchant_id, clock.terminal_id, clock.txn_ids) == ("M1", "TX", ["X1"])
    assert abs(clock.details["offset_seconds"] - YEAR) < HOUR
    assert r.types() == ["TERMINAL_CLOCK"]
    assert r.engine.feed.transaction_wm is not None
    assert r.engine.feed.transaction_wm < us(6 * HOUR)


def test_400_days_behind_is_reported_at_once_and_raises_no_missing_settlement() -> None:
    events = fleet()
    sale, settled = stray("X1", 2 * HOUR, -400 * DAY)
    r = run(*with_sale_at(events[:72], 24, sale), *events[72:], settled)
    clock = r.one("TERMINAL_CLOCK")
    assert clock.details["offset_seconds"] < -399 * DAY
    assert r.types() == ["TERMINAL_CLOCK"]


def test_its_sales_are_still_reconciled() -> None:
    """A wrong clock does not hide a real fault: the sale whose line never comes is missing,
    judged on the partition's time (not a year later, not at once)."""
    events = fleet(hours=30)
    sale = txn("X1", 2 * HOUR - 400 * DAY, merchant="M1", terminal="TX", card="tok_x")
    sales: list[Event] = [e for e in events if isinstance(e, Transaction)]
    lines = [e for e in events if not isinstance(e, Transaction)]
    r = run(*with_sale_at(sales, 24, sale), *lines)
    missing = [a for a in r.final("MISSING_SETTLEMENT") if a.txn_ids == ["X1"]]
    assert len(missing) == 1
    assert r.engine.times.watermark is not None


def test_a_duplicate_charge_on_a_wrong_clock_is_still_caught() -> None:
    events = fleet()
    first = txn("X1", 2 * HOUR - 400 * DAY, merchant="M1", terminal="TX", card="tok_x")
    again = txn("X2", 2 * HOUR + 40 - 400 * DAY, merchant="M1", terminal="TX", card="tok_x")
    r = run(*with_sale_at(events[:72], 24, first, again))
    dup = r.one("DUPLICATE_CHARGE")
    assert dup.txn_ids == ["X1", "X2"]


def test_a_clock_that_is_fixed_resolves_its_alert() -> None:
    events = fleet()
    ahead = [
        txn(f"X{k}", 2 * HOUR + k * 10 * MIN + 8 * HOUR, merchant="M1", terminal="TX", card="t")
        for k in range(3)
    ]
    fixed = txn("X9", 3 * HOUR, merchant="M1", terminal="TX", card="tok_fixed")
    merged = [*events[:24], ahead[0], *events[24:26], ahead[1], *events[26:28], ahead[2]]
    merged += [*events[28:36], fixed, *events[36:72]]
    r = run(*merged)
    clock = r.one("TERMINAL_CLOCK")
    assert clock.status == "RESOLVED"
    assert clock.txn_ids == ["X0"]
    assert 7 * HOUR < clock.details["offset_seconds"] < 9 * HOUR
    assert clock.details["agreeing_txn_id"] == "X9"


def test_a_true_jump_is_corroborated_and_changes_no_time() -> None:
    """After a quiet night the first sale is ahead of everything seen: a claim, until a second
    merchant's sale agrees with it. Its own time stays its own."""
    night = fleet(hours=3)
    morning = fleet(hours=1, start=14 * HOUR)
    sales = [e for e in night if isinstance(e, Transaction)]
    later = [e for e in morning if isinstance(e, Transaction)]
    engine = Engine()
    for event in [*sales, *later]:
        engine.submit(event)
    engine.flush()
    assert [a for a in engine.out.alerts if a.type == "TERMINAL_CLOCK"] == []
    assert all(e.ts == e.at for e in later[1:])
    assert later[0].at < later[0].ts  # held back until the next merchant's sale corroborated it
    assert engine.times.watermark == later[-1].ts


def test_a_wrong_clock_first_in_the_partition_does_not_set_its_time() -> None:
    events = fleet()
    first = txn("X1", YEAR, merchant="M1", terminal="TX", card="tok_x")
    r = run(first, *events[:72])
    assert r.one("TERMINAL_CLOCK").txn_ids == ["X1"]
    assert r.engine.times.watermark is not None and r.engine.times.watermark < us(6 * HOUR)


def test_clock_alerts_can_be_silenced_but_times_are_still_guarded() -> None:
    from streams.configfile import config_from_mapping

    cfg = config_from_mapping({"terminal_clock": {"enabled": False}})
    events = fleet()
    sale, settled = stray("X1", 2 * HOUR, YEAR)
    r = run(*with_sale_at(events[:72], 24, sale), *events[72:], settled, config=cfg)
    assert r.final() == []
    assert r.engine.times.watermark is not None and r.engine.times.watermark < us(6 * HOUR)


def test_an_exact_redelivery_of_a_retimed_sale_is_no_conflict() -> None:
    events = fleet()
    sale = txn("X1", 2 * HOUR - 400 * DAY, merchant="M1", terminal="TX", card="tok_x")
    again = txn("X1", 2 * HOUR - 400 * DAY, merchant="M1", terminal="TX", card="tok_x")
    r = run(*with_sale_at(events[:72], 24, sale), *events[72:80], again)
    assert r.rejections == []


# -- a simulated fleet, with and without terminals whose clocks are wrong ------------------------


@cache
def _simulated() -> tuple[Config, list[bytes], list[bytes]]:
    with tempfile.TemporaryDirectory(prefix="clock-fleet-") as tmp:
        data = Path(tmp)
        write_simulation(data, SimulationSettings(seed=11, days=4, merchants=12))
        return (
            load_config(data / "config.toml"),
            (data / "transactions.jsonl").read_bytes().splitlines(),
            (data / "settlements.jsonl").read_bytes().splitlines(),
        )


def _replay_states(
    config: Config, txns: list[bytes], lines: list[bytes]
) -> dict[str, tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        tp, sp = Path(tmp) / "t.jsonl", Path(tmp) / "s.jsonl"
        tp.write_bytes(b"\n".join(txns) + b"\n")
        sp.write_bytes(b"\n".join(lines) + b"\n")
        alerts: list[Alert] = []
        replay(tp, sp, config, alerts.append, lambda _letter: None)
    return {a.alert_id: (a.type, a.status) for a in alerts}


def _first_doc(
    rows: list[bytes], positions: Iterable[int], wanted: Callable[[dict[str, Any]], bool]
) -> tuple[int, dict[str, Any]]:
    """The first well-formed row, among ``positions`` in that order, that is ``wanted`` (the
    files carry some garbage on purpose)."""
    for k in positions:
        try:
            doc = msgspec.json.decode(rows[k])
        except msgspec.DecodeError:
            continue
        if isinstance(doc, dict) and wanted(doc):
            return k, doc
    raise AssertionError("no such row")


def _sale_before(rows: list[bytes], position: int) -> dict[str, Any]:
    """The last sale before ``position`` that is not a stray nor one of the simulator's own
    wrong clocks (terminals -T7n)."""
    return _first_doc(
        rows,
        range(position - 1, -1, -1),
        lambda doc: (
            doc.get("type") == "SALE"
            and "STRAY" not in doc["txn_id"]
            and "-T7" not in doc["terminal_id"]
        ),
    )[1]


def _next_batch(rows: list[bytes], moment: datetime) -> tuple[int, dict[str, Any]]:
    """The first settlement line stamped after ``moment`` (the batch a sale of that moment
    settles in) and its position."""
    return _first_doc(
        rows,
        range(len(rows)),
        lambda doc: "batch_id" in doc and datetime.fromisoformat(doc["settled_at"]) > moment,
    )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.floats(0.05, 0.95),
            st.sampled_from([YEAR, 3 * DAY, 26 * HOUR, 2 * HOUR, -3 * HOUR, -5 * DAY, -400 * DAY]),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_wrong_clocks_add_their_reports_and_change_nothing_else(
    strays: list[tuple[float, int]],
) -> None:
    """Terminals with wrong clocks, one sale each settled in the next batch, dropped into a
    simulated fleet's files where their true time would put them: every alert of the fleet
    without them, with the same final status, and one TERMINAL_CLOCK per terminal, nothing else."""
    config, txns, lines = _simulated()
    clean = _replay_states(config, txns, lines)
    with_strays, line_rows = list(txns), list(lines)
    for n, (where, offset) in enumerate(sorted(strays)):
        position = round(where * len(with_strays))
        near = _sale_before(with_strays, position)
        true = datetime.fromisoformat(near["event_time"])
        doc = {
            **near,
            "txn_id": f"STRAY{n}",
            "terminal_id": f"STRAY-T{n}",
            "card_token": f"tok_stray{n}",
            "type": "SALE",
            "status": "APPROVED",
            "amount_minor": 1234,
            "event_time": (true + timedelta(seconds=offset)).isoformat(),
        }
        doc.pop("original_txn_id", None)
        with_strays.insert(position, msgspec.json.encode(doc))
        position_in_batch, batch = _next_batch(line_rows, true)
        rate = config.fees.rate(doc["merchant_id"], doc["channel"])
        fee = expected_fee(1234, rate)
        stray_line = msgspec.json.encode(
            {
                "settlement_id": f"L-STRAY{n}",
                "txn_id": f"STRAY{n}",
                "merchant_id": doc["merchant_id"],
                "gross_minor": 1234,
                "fee_minor": fee,
                "net_minor": 1234 - fee,
                "currency": doc["currency"],
                "status": "SETTLED",
                "settled_at": batch["settled_at"],
                "batch_id": batch["batch_id"],
            }
        )
        line_rows.insert(position_in_batch + 1, stray_line)
    states = _replay_states(config, with_strays, line_rows)
    added = {k: v for k, v in states.items() if k not in clean}
    assert {k: v for k, v in states.items() if k in clean} == clean
    reported = [v for v in added.values() if v[0] == "TERMINAL_CLOCK"]
    assert len(reported) == len(added), added
    assert len(reported) == sum(1 for _, offset in strays if abs(offset) > HOUR)
