"""What replay says about a data directory, and comparisons with what a stream published."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from models.forest import load_model
from models.scorer import Scorer
from streams.alerts import Alert
from streams.config_log import LiveVersion
from streams.configfile import load_config
from streams.deadletter import DeadLetter
from streams.replay import replay
from streams.simulate.produce import arrival_order, rows_from_file
from streams.worker.merge import PAYOUTS, SETTLEMENTS, TRANSACTIONS


def _version(alert: dict[str, Any]) -> bytes:
    """An alert event's content, without the wall-clock ``detected_at``."""
    return msgspec.json.encode({k: v for k, v in sorted(alert.items()) if k != "detected_at"})


@dataclass
class Expected:
    final: dict[str, tuple[str, str]]
    """alert_id -> (type, final status)."""
    versions: dict[str, set[bytes]]
    """alert_id -> every content replay emitted for it."""
    dead_reasons: Counter[str] = field(default_factory=Counter)
    events: int = 0


def expected_from_replay(
    data: Path, model: Path | None = None, config_log: Sequence[LiveVersion] = ()
) -> Expected:
    alerts: list[Alert] = []
    dead: list[DeadLetter] = []
    config = load_config(data / "config.toml")
    replay(
        data / "transactions.jsonl",
        data / "settlements.jsonl",
        config,
        alerts.append,
        dead.append,
        scorer=Scorer(load_model(model)) if model is not None else None,
        config_log=config_log,
        payouts=data / "payouts.jsonl" if (data / "payouts.jsonl").is_file() else None,
    )
    as_dicts = [msgspec.to_builtins(a) for a in alerts]
    events = sum(
        1
        for name in ("transactions.jsonl", "settlements.jsonl", "payouts.jsonl")
        if (data / name).is_file()
        for line in (data / name).read_bytes().splitlines()
        if line.strip()
    )
    return Expected(
        final=final_states(as_dicts),
        versions=versions(as_dicts),
        dead_reasons=Counter(d.reason for d in dead),
        events=events,
    )


def final_states(alerts: Iterable[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    final: dict[str, tuple[str, str]] = {}
    for alert in alerts:
        final[alert["alert_id"]] = (alert["type"], alert["status"])
    return final


def versions(alerts: Iterable[dict[str, Any]]) -> dict[str, set[bytes]]:
    out: dict[str, set[bytes]] = {}
    for alert in alerts:
        out.setdefault(alert["alert_id"], set()).add(_version(alert))
    return out


def decode_all(values: Iterable[bytes]) -> list[dict[str, Any]]:
    return [msgspec.json.decode(v) for v in values]


def wait_until(check: Callable[[], bool], timeout_s: float, every_s: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every_s)


def merged_messages(data: Path) -> list[tuple[int, int, bytes]]:
    """A data directory's inputs as ``(arrival key, side, raw)``, sides as the worker numbers
    them (``merge.SIDES``: transactions, settlements, pay-outs), as ``posguard produce`` sends
    them: each file in its order, interleaved."""
    txns = rows_from_file(data / "transactions.jsonl", "event_time")
    lines = rows_from_file(data / "settlements.jsonl", "settled_at")
    payouts = data / "payouts.jsonl"
    paid = rows_from_file(payouts, "value_date") if payouts.is_file() else []
    sides = (TRANSACTIONS, SETTLEMENTS, PAYOUTS)
    return [(key, sides[side], raw) for key, side, raw in arrival_order(txns, lines, paid)]
