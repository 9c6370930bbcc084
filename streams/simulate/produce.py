"""Producing input to Kafka: simulated traffic or JSON Lines files, each in its own order.

Each file goes to its topic in file order (a file is a topic's log). The two are interleaved, and
paced, by ``arrival_keys``: event time with a terminal's wrong clock smoothed out, so a sale
stamped a year ahead neither holds back the rest of its file nor makes the producer sleep.

Keyed by ``merchant_id`` as the contract says (a line that is not JSON has no key and lands on
whichever partition the producer picks). Paced with ``speed`` (event-time seconds per wall-clock
second) for a live demo, or as fast as the broker takes it.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import msgspec
from kafka import KafkaProducer

from streams.kafka_probe import probe_broker
from streams.kafka_security import KafkaSecurity
from streams.timefmt import to_us
from streams.worker.settings import Topics

Row = tuple[int, int, bytes]
"""``(event time in us, order, raw line)``."""


class _Keyed(msgspec.Struct):
    merchant_id: str


_key_decoder = msgspec.json.Decoder(_Keyed)


def message_key(raw: bytes) -> bytes | None:
    try:
        return _key_decoder.decode(raw).merchant_id.encode()
    except (msgspec.DecodeError, UnicodeEncodeError):
        return None


@dataclass(slots=True)
class ProduceReport:
    transactions: int = 0
    settlements: int = 0
    payouts: int = 0
    seconds: float = 0.0


def rows_from_file(path: Path, time_field: str) -> list[Row]:
    """A JSON Lines file as rows; a line without a readable time keeps its neighbour's."""
    rows: list[Row] = []
    last = 0
    with path.open("rb") as fh:
        for order, line in enumerate(fh):
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                ts = to_us(datetime.fromisoformat(msgspec.json.decode(raw)[time_field]))
            except (msgspec.DecodeError, KeyError, TypeError, ValueError):
                ts = last
            last = ts
            rows.append((ts, order, raw))
    return rows


_SMOOTHING: Final = 2
"""Neighbours on each side whose times a row's arrival key is the median of."""


def arrival_keys(times: list[int]) -> list[int]:
    """When each row of a file arrives, on its event-time scale: the median of its own and its
    neighbours' times (a lone wrong clock among them does not count), never earlier than the
    row before it."""
    keys: list[int] = []
    last = -(2**63)
    n = len(times)
    for i in range(n):
        window = sorted(times[max(0, i - _SMOOTHING) : min(n, i + _SMOOTHING + 1)])
        last = max(last, window[len(window) // 2])
        keys.append(last)
    return keys


def arrival_order(
    txn_rows: Iterable[Row], line_rows: Iterable[Row], *more: Iterable[Row]
) -> Iterator[tuple[int, int, bytes]]:
    """``(arrival key, side, raw)``: each file in its own order, interleaved by arrival key;
    on a tie the earlier side (transactions, settlements, then ``more``) goes first."""
    sides = []
    for side, rows in enumerate((list(txn_rows), list(line_rows), *(list(r) for r in more))):
        keys = arrival_keys([ts for ts, _, _ in rows])
        paired = enumerate(zip(keys, rows, strict=True))
        sides.append([(key, side, k, raw) for k, (key, (_, _, raw)) in paired])
    for key, side, _, raw in heapq.merge(*sides, key=lambda r: (r[0], r[1], r[2])):
        yield key, side, raw


def produce(
    bootstrap: str,
    topics: Topics,
    txn_rows: Iterable[Row],
    line_rows: Iterable[Row],
    speed: float | None = None,
    progress: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    warmup_us: int = 0,
    security: KafkaSecurity | None = None,
    payout_rows: Iterable[Row] = (),
) -> ProduceReport:
    """Send every row to its topic; with ``speed``, wait so event time runs ``speed`` times
    faster than the wall clock, after the first ``warmup_us`` of event time sent at once.

    A broker that refuses ``security`` raises BrokerSecurityError before anything is sent."""
    security = security or KafkaSecurity()
    probe_broker(bootstrap, security)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        **security.kafka_python(),
        client_id="posguard-simulate",
        acks="all",
        linger_ms=5,
        batch_size=256 * 1024,
    )
    report = ProduceReport()
    started = time.monotonic()
    first_ts: int | None = None
    names = (topics.transactions, topics.settlements, topics.payouts)
    counts = [0, 0, 0]
    try:
        for n, (ts, side, raw) in enumerate(arrival_order(txn_rows, line_rows, payout_rows), 1):
            if speed is not None:
                if first_ts is None:
                    first_ts = ts + warmup_us
                due = (ts - first_ts) / 1e6 / speed - (time.monotonic() - started)
                if due > 0:
                    producer.flush()
                    time.sleep(due)
            if should_stop is not None and should_stop():
                break
            producer.send(names[side], key=message_key(raw), value=raw)
            counts[side] += 1
            if progress is not None and not n % 1000:
                progress(1000)
        producer.flush()
    finally:
        producer.close()
    report.transactions, report.settlements, report.payouts = counts
    report.seconds = time.monotonic() - started
    return report
