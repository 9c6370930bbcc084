"""Injected input faults: lines that must go to the dead letters, and terminals with wrong
clocks (each labelled with what posguard must make of it)."""

from __future__ import annotations

from typing import Final

import msgspec

from streams.simulate.picks import card_number, daytime, merchant_at
from streams.simulate.records import SimTxn
from streams.simulate.world import DAY, HOUR, MINUTE, SECOND, World
from streams.timefmt import format_us

_encode: Final = msgspec.json.encode


def bad_input(world: World) -> None:
    """Lines that must go to the dead letters; each is labelled with its reason."""
    rng = world.rng
    m = merchant_at(world, 0)
    model = world.txns[len(world.txns) // 3]
    good = model.to_json()
    batch = world.start + DAY + round(1.5 * HOUR)
    line_doc = {
        "settlement_id": "S-BAD",
        "txn_id": "T-BAD",
        "merchant_id": m.merchant_id,
        "gross_minor": 100,
        "fee_minor": 1,
        "net_minor": 99,
        "currency": m.currency,
        "status": "SETTLED",
        "settled_at": format_us(batch),
    }
    cases: list[tuple[str, str, bytes]] = [
        ("transaction", "INVALID_JSON", _encode(good)[:-9]),
        ("transaction", "SCHEMA_VIOLATION", _encode({**good, "amount_minor": 12.5})),
        ("transaction", "SCHEMA_VIOLATION", _encode({**good, "amount_minor": "1200"})),
        (
            "transaction",
            "SCHEMA_VIOLATION",
            _encode({k: v for k, v in good.items() if k != "terminal_id"}),
        ),
        ("transaction", "SCHEMA_VIOLATION", _encode({**good, "currency": "cny"})),
        ("transaction", "SCHEMA_VIOLATION", _encode({**good, "event_time": "2026-03-03T10:00:00"})),
        ("transaction", "SCHEMA_VIOLATION", _encode({**good, "type": "PURCHASE"})),
        (
            "transaction",
            "CARD_NUMBER",
            _encode({**good, "txn_id": "T-PAN-1", "card_token": card_number(rng)}),
        ),
        ("transaction", "NOT_UTF8", b'{"txn_id": "\xff\xfe"}'),
        ("settlement", "SCHEMA_VIOLATION", _encode({**line_doc, "gross_minor": -5})),
        ("settlement", "SCHEMA_VIOLATION", _encode({**line_doc, "status": "PAID"})),
        ("settlement", "INVALID_JSON", b"settlement batch B20260303 follows"),
    ]
    for kind, reason, raw in cases:
        # Each bad line sits where its (copied) time puts it, so the files stay in time order.
        world.bad_lines.append((kind, model.ts if kind == "transaction" else batch, raw))
        world.labels.append({"type": "DEAD_LETTER", "reason": reason, "file": kind})
    # A resend of a known transaction with a changed amount: a conflict, dead-lettered.
    victim = next(t for t in world.txns[len(world.txns) // 2 :] if t.type == "SALE")
    world.conflict = SimTxn(
        victim.txn_id,
        victim.merchant,
        victim.terminal_id,
        victim.card_token,
        victim.type,
        victim.status,
        victim.amount_minor + 100,
        victim.channel,
        victim.entry_mode,
        victim.ts + 30 * SECOND,
    )
    world.labels.append({"type": "DEAD_LETTER", "reason": "CONFLICT", "file": "transaction"})


def wrong_clocks(world: World) -> None:
    """Terminals whose clocks are off, with one sale each, settled as usual: a year ahead, three
    days ahead, 400 days behind. And one that sends local time as UTC (8 h ahead) for an hour and
    a half before it is fixed. Each is one TERMINAL_CLOCK alert and nothing else."""
    for n, (offset, what) in enumerate(
        [
            (365 * DAY, "a year ahead"),
            (3 * DAY, "three days ahead"),
            (-400 * DAY, "400 days behind"),
        ]
    ):
        m = merchant_at(world, 5 + 9 * n)
        terminal = f"{m.merchant_id}-T7{n}"
        sale = world.sale(
            m,
            terminal,
            daytime(world, m, 1 + n % (world.days - 2)),
            world.fresh_card(),
            world.amount(m),
        )
        sale.clock_offset = offset
        world.label(
            "TERMINAL_CLOCK",
            "OPEN",
            f"terminal clock {what}",
            merchant_id=m.merchant_id,
            terminal_id=terminal,
            txn_ids=[sale.txn_id],
        )
    m = merchant_at(world, 31)
    terminal = f"{m.merchant_id}-T79"
    ts = daytime(world, m, 2, 10, 12)
    sales = [
        world.sale(m, terminal, ts + k * 30 * MINUTE, world.fresh_card(), world.amount(m))
        for k in range(5)
    ]
    for sale in sales[:4]:
        sale.clock_offset = 8 * HOUR
    world.label(
        "TERMINAL_CLOCK",
        "RESOLVED",
        "local time sent as UTC, then fixed",
        merchant_id=m.merchant_id,
        terminal_id=terminal,
        txn_ids=[sales[0].txn_id],
    )
