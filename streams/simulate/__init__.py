"""``posguard simulate``: a merchant fleet's traffic with injected anomalies and ground truth.

Deterministic per seed. Files written to the output directory:

- ``transactions.jsonl`` and ``settlements.jsonl``: the contract's input, in event-time order, with
  exact redeliveries, a conflicting resend, bad lines and mixed time-zone offsets;
- ``payouts.jsonl``: what the acquirer credited to each merchant's bank account (``payouts.py``);
- ``labels.jsonl``: one line per alert the data must raise (type, evidence ids, final status) and
  one per dead letter it must produce;
- ``config.toml``: the fee-rate override one merchant negotiated;
- ``manifest.json``: the settings and counts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import msgspec

from streams.money import format_rate
from streams.simulate.input_faults import bad_input
from streams.simulate.patterns import suspicious_patterns
from streams.simulate.payouts import pay_out
from streams.simulate.scenarios import ALL_SCENARIOS
from streams.simulate.world import SimulationSettings, World

__all__ = [
    "SimulationSettings",
    "World",
    "generate",
    "input_rows",
    "payout_rows",
    "write_simulation",
]


def generate(settings: SimulationSettings) -> World:
    """Build the whole run in memory (normal traffic, scenarios, settlement batches)."""
    world = World(settings)
    world.normal_traffic()
    for scenario in ALL_SCENARIOS:
        scenario(world)
    bad_input(world)
    suspicious_patterns(world)
    world.settle_all()
    world.payouts = pay_out(world)
    return world


def _transaction_lines(world: World) -> list[tuple[int, int, bytes]]:
    encode = msgspec.json.encode
    rows: list[tuple[int, int, bytes]] = []
    for order, txn in enumerate(sorted(world.txns, key=lambda t: (t.ts, t.txn_id))):
        raw = encode(txn.to_json())
        rows.append((txn.ts, 2 * order, raw))
        if txn.redeliver:
            rows.append((txn.ts, 2 * order + 1, raw))
    if world.conflict is not None:
        rows.append((world.conflict.ts, -1, encode(world.conflict.to_json())))
    return rows


def _settlement_lines(world: World) -> list[tuple[int, int, bytes]]:
    encode = msgspec.json.encode
    rows: list[tuple[int, int, bytes]] = []
    for order, line in enumerate(sorted(world.lines, key=lambda x: (x.ts, x.settlement_id))):
        raw = encode(line.to_json())
        rows.append((line.ts, 2 * order, raw))
        if line.redeliver:
            rows.append((line.ts, 2 * order + 1, raw))
    return rows


def _write_jsonl(path: Path, rows: list[tuple[int, int, bytes]]) -> int:
    with path.open("wb") as fh:
        for _, _, raw in rows:
            fh.write(raw + b"\n")
    return len(rows)


def input_rows(world: World) -> tuple[list[tuple[int, int, bytes]], list[tuple[int, int, bytes]]]:
    """Transaction and settlement lines as ``(ts, order, raw)``, each list in file order."""
    txn_rows = _transaction_lines(world)
    line_rows = _settlement_lines(world)
    for kind, ts, raw in world.bad_lines:
        # A bad line sits among the events of its moment; it has no time of its own.
        (txn_rows if kind == "transaction" else line_rows).append((ts, -2, raw))
    txn_rows.sort(key=lambda r: (r[0], r[1]))
    line_rows.sort(key=lambda r: (r[0], r[1]))
    return txn_rows, line_rows


def payout_rows(world: World) -> list[tuple[int, int, bytes]]:
    """Pay-out lines as ``(ts, order, raw)``, in file (value-date) order."""
    encode = msgspec.json.encode
    return [(p.value_ts, n, encode(p.to_json())) for n, p in enumerate(world.payouts)]


def write_simulation(
    out_dir: Path, settings: SimulationSettings, world: World | None = None
) -> str:
    """Generate (unless given) and write a run; returns a one-paragraph summary for stderr."""
    world = world or generate(settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    txn_rows, line_rows = input_rows(world)
    n_txn = _write_jsonl(out_dir / "transactions.jsonl", txn_rows)
    n_lines = _write_jsonl(out_dir / "settlements.jsonl", line_rows)
    n_payouts = _write_jsonl(out_dir / "payouts.jsonl", payout_rows(world))
    with (out_dir / "labels.jsonl").open("wb") as fh:
        for label in world.labels:
            fh.write(msgspec.json.encode(label) + b"\n")
    (out_dir / "config.toml").write_text(_config_text(world))
    alerts = sum(1 for label in world.labels if label["type"] != "DEAD_LETTER")
    manifest: dict[str, Any] = {
        "settings": dataclasses.asdict(settings),
        "transaction_lines": n_txn,
        "settlement_lines": n_lines,
        "payouts": n_payouts,
        "merchants": len(world.fleet),
        "terminals": sum(len(m.terminals) for m in world.fleet),
        "labelled_alerts": alerts,
        "labelled_dead_letters": len(world.labels) - alerts,
    }
    (out_dir / "manifest.json").write_bytes(msgspec.json.format(msgspec.json.encode(manifest)))
    return (
        f"posguard simulate: {n_txn:,} transaction lines, {n_lines:,} settlement lines and "
        f"{n_payouts:,} pay-outs for "
        f"{len(world.fleet)} merchants over {settings.days} days (seed {settings.seed}); "
        f"{alerts} labelled alerts and {len(world.labels) - alerts} labelled dead letters "
        f"in {out_dir}"
    )


def _config_text(world: World) -> str:
    lines = ["# Fee rates this simulated fleet negotiated; posguard evaluate reads this file.", ""]
    for merchant_id, rates in world.fee_overrides.items():
        lines.append(f"[fees.merchants.{merchant_id}]")
        lines.extend(f'{channel} = "{format_rate(rate)}"' for channel, rate in rates.items())
    return "\n".join(lines) + "\n"
