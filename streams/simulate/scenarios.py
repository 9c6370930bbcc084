"""Injected anomalies (each with its label) and look-alikes that must not raise anything."""

from __future__ import annotations

from typing import Final

import msgspec

from streams.simulate.fleet import Merchant
from streams.simulate.input_faults import wrong_clocks
from streams.simulate.picks import card_number, daytime, merchant_at
from streams.simulate.records import SettleMode, SimLine, SimTxn
from streams.simulate.world import DAY, HOUR, MINUTE, SECOND, World

_encode: Final = msgspec.json.encode


def duplicate_charges(world: World) -> None:
    rng = world.rng
    for n in range(3):
        m = merchant_at(world, 3 + n * 7)
        ts = daytime(world, m, n % world.days)
        card, amount = world.fresh_card(), world.amount(m)
        first = world.sale(m, m.terminals[0], ts, card, amount)
        second = world.sale(m, m.terminals[0], ts + rng.randrange(15, 100) * SECOND, card, amount)
        if n == 2:  # the cashier notices and voids the copy: the alert resolves
            second.settle = "none"
            world.follow_up(second, "VOID", second.ts + 3 * MINUTE)
            world.label(
                "DUPLICATE_CHARGE",
                "RESOLVED",
                "duplicate then voided",
                merchant_id=m.merchant_id,
                txn_ids=[first.txn_id, second.txn_id],
            )
        else:
            world.label(
                "DUPLICATE_CHARGE",
                "OPEN",
                "card charged twice within two minutes",
                merchant_id=m.merchant_id,
                txn_ids=[first.txn_id, second.txn_id],
            )


def settlement_problems(world: World) -> None:
    """Lines that are missing, rejected, late, doubled or wrong, and lines for failed sales."""
    cases: list[tuple[SettleMode, str, str, str]] = [
        # (settle mode, alert type, final status, scenario)
        ("drop", "MISSING_SETTLEMENT", "OPEN", "the acquirer never sent the line"),
        ("drop", "MISSING_SETTLEMENT", "OPEN", "the acquirer never sent the line"),
        ("reject", "MISSING_SETTLEMENT", "OPEN", "the acquirer rejected the sale"),
        ("late", "MISSING_SETTLEMENT", "RESOLVED", "the line arrived days late"),
        ("duplicate", "DUPLICATE_SETTLEMENT", "OPEN", "the sale was settled twice"),
        ("gross_off", "AMOUNT_MISMATCH", "OPEN", "gross differs from the sale"),
        ("fee_off", "AMOUNT_MISMATCH", "OPEN", "fee above the contracted rate"),
        ("net_off", "AMOUNT_MISMATCH", "OPEN", "net is not gross minus fee"),
    ]
    for n, (mode, kind, final, scenario) in enumerate(cases):
        m = merchant_at(world, 5 + n * 3)
        day = 0 if mode == "late" else n % (world.days - 1)
        hi = 16 if mode != "late" else 14
        ts = daytime(world, m, day, 9, hi)
        if mode == "late":
            ts = min(ts, world.start + 18 * HOUR)
        sale = world.sale(m, m.terminals[-1], ts, world.fresh_card(), world.amount(m))
        sale.settle = mode
        world.label(kind, final, scenario, merchant_id=m.merchant_id, txn_ids=[sale.txn_id])
    # Money settled for attempts that failed or were cancelled.
    for n, status in enumerate(["DECLINED", "TIMEOUT", "VOIDED"]):
        m = merchant_at(world, 11 + n * 5)
        ts = daytime(world, m, n % (world.days - 1))
        terminal = f"{m.merchant_id}-T8{n}"
        if status == "VOIDED":
            sale = world.sale(m, terminal, ts, world.fresh_card(), world.amount(m))
            world.follow_up(sale, "VOID", ts + 2 * MINUTE)
        else:
            sale = world.sale(m, terminal, ts, world.fresh_card(), world.amount(m), status)
        sale.settle = "force"
        world.label(
            "SETTLED_WITHOUT_APPROVAL",
            "OPEN",
            f"settled although {status}",
            merchant_id=m.merchant_id,
            txn_ids=[sale.txn_id],
        )


def unmatched_settlements(world: World) -> None:
    """Lines for transactions no terminal ever reported, in an ordinary batch."""
    for n in range(2):
        m = merchant_at(world, 2 + n * 9)
        when = world.start + DAY + round(1.5 * HOUR)  # the batch for day 0
        amount = world.amount(m)
        line = SimLine(
            world.settlement_id(),
            f"X{n:05d}-{world.settings.seed}",
            m.merchant_id,
            amount,
            amount * 6 // 1000,
            amount - amount * 6 // 1000,
            m.currency,
            "SETTLED",
            "B-UNMATCHED",
            when,
            0,
        )
        world.lines.append(line)
        world.label(
            "UNMATCHED_SETTLEMENT",
            "OPEN",
            "settled a transaction nobody reported",
            merchant_id=m.merchant_id,
            txn_ids=[line.txn_id],
            settlement_ids=[line.settlement_id],
        )


def refund_anomalies(world: World) -> None:
    rng = world.rng
    m = merchant_at(world, 4)
    ts = daytime(world, m, 1)
    card = world.fresh_card()
    ghost = world.add(
        SimTxn(
            world.txn_id(),
            m,
            m.terminals[0],
            card,
            "REFUND",
            "APPROVED",
            world.amount(m),
            "CARD",
            "KEYED",
            ts,
            original_txn_id=f"T-NOSUCH-{rng.randrange(10**6)}",
            settle="normal",
        )
    )
    world.label(
        "REFUND_ANOMALY",
        "OPEN",
        "refund of a sale that never happened",
        merchant_id=m.merchant_id,
        txn_ids=[ghost.txn_id],
    )
    # A refund against another merchant's sale.
    other = merchant_at(world, 9)
    sale = world.sale(
        other,
        other.terminals[0],
        daytime(world, other, 0),
        world.fresh_card(),
        world.amount(other),
    )
    m2 = merchant_at(world, 14)
    stray = world.add(
        SimTxn(
            world.txn_id(),
            m2,
            m2.terminals[0],
            sale.card_token,
            "REFUND",
            "APPROVED",
            min(sale.amount_minor, world.amount(m2)),
            "CARD",
            "CHIP",
            sale.ts + 5 * HOUR,
            original_txn_id=sale.txn_id,
            settle="normal",
        )
    )
    world.label(
        "REFUND_ANOMALY",
        "OPEN",
        "refund of another merchant's sale",
        merchant_id=m2.merchant_id,
        txn_ids=[stray.txn_id],
    )
    # Two refunds adding up to more than the sale.
    m3 = merchant_at(world, 6)
    sale = world.sale(
        m3, m3.terminals[0], daytime(world, m3, 0), world.fresh_card(), max(1000, world.amount(m3))
    )
    r1 = world.follow_up(sale, "REFUND", sale.ts + 20 * HOUR, sale.amount_minor * 6 // 10)
    r2 = world.follow_up(sale, "REFUND", sale.ts + 26 * HOUR, sale.amount_minor * 6 // 10)
    world.label(
        "REFUND_ANOMALY",
        "OPEN",
        "refunds exceed the sale",
        merchant_id=m3.merchant_id,
        txn_ids=[sale.txn_id, r1.txn_id, r2.txn_id],
    )


def terminal_faults(world: World) -> None:
    rng = world.rng
    for n, recovers in enumerate([True, False]):
        m = merchant_at(world, 8 + n * 11)
        terminal = f"{m.merchant_id}-T9{n}"
        day = 1 if recovers else world.days - 1
        ts = daytime(world, m, day, 10, 13)
        ids = []
        for k in range(8):
            status = "TIMEOUT" if k % 4 != 3 else "APPROVED"
            t = world.sale(
                m, terminal, ts + k * 40 * SECOND, world.fresh_card(), world.amount(m), status
            )
            ids.append(t.txn_id)
        if recovers:
            for k in range(3):
                world.sale(
                    m,
                    terminal,
                    ts + (40 + 5 * k) * MINUTE + rng.randrange(60) * SECOND,
                    world.fresh_card(),
                    world.amount(m),
                )
        world.label(
            "TERMINAL_FAULT",
            "RESOLVED" if recovers else "OPEN",
            "terminal timing out, then recovering" if recovers else "terminal down",
            merchant_id=m.merchant_id,
            terminal_id=terminal,
            txn_ids=ids,
        )


def velocity(world: World) -> None:
    rng = world.rng
    # Card testing: six approved sales at one merchant within eight minutes.
    m = merchant_at(world, 12)
    card = world.fresh_card()
    ts = daytime(world, m, 2)
    ids = [
        world.sale(m, m.terminals[0], ts + k * 80 * SECOND, card, world.amount(m) + k).txn_id
        for k in range(6)
    ]
    world.label(
        "VELOCITY", "OPEN", "six sales in eight minutes", merchant_id=m.merchant_id, txn_ids=ids
    )
    # A stolen card used at three merchants of one region within nine minutes (three distinct
    # merchants: a fleet of ten has only two per region, and then a neighbour stands in).
    merchants: list[Merchant] = []
    for k in range(3):
        index = 15 + 5 * k
        while merchant_at(world, index) in merchants:
            index += 1
        merchants.append(merchant_at(world, index))
    card = world.fresh_card()
    ts = daytime(world, merchants[0], 1)
    ids = []
    for k, mk in enumerate(merchants):
        ids.append(
            world.sale(
                mk,
                mk.terminals[0],
                ts + k * (3 * MINUTE + rng.randrange(60) * SECOND),
                card,
                world.amount(mk),
            ).txn_id
        )
    world.label(
        "VELOCITY",
        "OPEN",
        "one card at three merchants in minutes",
        merchant_id=merchants[-1].merchant_id,
        txn_ids=ids,
    )


def feed_gap(world: World) -> None:
    """The batch for ``late_day`` arrives 34 h late (see ``World.batch_time``)."""
    world.label(
        "SETTLEMENT_FEED_GAP", "RESOLVED", "the acquirer's batch arrived 34 h late", merchant_id="*"
    )


def look_alikes(world: World) -> None:
    """Traffic that resembles an anomaly and must raise nothing."""
    rng = world.rng
    for n in range(4):
        m = merchant_at(world, 1 + n * 4)
        day = n % world.days
        ts = daytime(world, m, day)
        card, amount = world.fresh_card(), world.amount(m)
        # Same card, same amount, six minutes apart: two coffees, not a duplicate.
        world.sale(m, m.terminals[0], ts, card, amount)
        world.sale(m, m.terminals[0], ts + 6 * MINUTE, card, amount)
        # A mistaken charge voided at once, then charged again: nothing to alert.
        card2, amount2 = world.fresh_card(), world.amount(m)
        first = world.sale(m, m.terminals[0], ts + HOUR, card2, amount2)
        first.settle = "none"
        world.follow_up(first, "VOID", ts + HOUR + 20 * SECOND)
        world.sale(m, m.terminals[0], ts + HOUR + 50 * SECOND, card2, amount2)
        # Four sales of one card in ten minutes: busy, but under the velocity limit.
        card3 = world.fresh_card()
        for k in range(4):
            world.sale(
                m, m.terminals[0], ts + 2 * HOUR + k * 2 * MINUTE, card3, world.amount(m) + k
            )
        # A field outside the contract carrying a card number: ignored, never echoed.
        noted = world.sale(m, m.terminals[0], ts + 3 * HOUR, world.fresh_card(), world.amount(m))
        noted.extra["note"] = f"customer card {card_number(rng)}"


ALL_SCENARIOS: Final = (
    duplicate_charges,
    settlement_problems,
    unmatched_settlements,
    refund_anomalies,
    terminal_faults,
    velocity,
    feed_gap,
    look_alikes,
    wrong_clocks,
)
