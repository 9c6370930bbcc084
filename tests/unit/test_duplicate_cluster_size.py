"""A terminal replaying one charge thousands of times: one DUPLICATE_CHARGE whose every event
stays small enough for a Kafka message, naming the first charges and counting the rest, with
the whole money at stake."""

from __future__ import annotations

from streams.alerts import encode_alert
from streams.config import Config
from streams.engine import Engine
from streams.stake import money_at_stake
from tests.builders import txn


def test_a_huge_duplicate_cluster_stays_small_and_counts_every_charge() -> None:
    engine = Engine(Config())
    n = 2500
    for i in range(n):
        engine.submit(txn(f"T{i:06d}", 3600 + i, card="tok_x", amount=1250))  # a second apart
    engine.flush()
    alerts = [a for a in engine.out.alerts if a.type == "DUPLICATE_CHARGE"]
    assert len({a.alert_id for a in alerts}) == 1
    last = alerts[-1]
    assert max(len(encode_alert(a, "2026-01-01T00:00:00Z")) for a in alerts) < 200_000
    assert len(last.txn_ids) == 1000 and last.txn_ids[0] == "T000000"
    assert len(last.details["transactions"]) == 100
    assert last.details["transactions_omitted"] == n - 100
    assert f"{n} times" in last.summary and f"and {n - 10} more" in last.summary
    stake = money_at_stake(last)
    assert stake is not None and stake.minor == (n - 1) * 1250
