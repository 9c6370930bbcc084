"""Labelled suspicious patterns for the isolation forest (``SUSPICIOUS_PATTERN``).

Each kind is something an acquirer's fraud team would want to see, built so that no rule fires on
it (no duplicate within 120 s, fewer than five sales or three merchants per card in 10 minutes):
only the model can catch it. Normal traffic has its own variety (price levels from coffee to
electronics, five currencies, bars open past midnight, 24-hour fuel stations, later weekend
hours), so separating these takes the merchant-relative features, not one global cut-off.

- ``cash_out``: a merchant swipes its own card for large round sums, three times an evening,
  a quarter of an hour apart;
- ``card_testing``: a stolen card number keyed in for tiny amounts, declined twice, then approved
  at two merchants within minutes;
- ``night_keyed``: a high-value sale with the card details keyed in at 3 a.m. at a daytime shop;
- ``amount_shift``: a merchant suddenly takes chip payments dozens of times its usual amount.
"""

from __future__ import annotations

from typing import Final

from streams.money import exponent
from streams.simulate.fleet import Merchant
from streams.simulate.records import SimTxn
from streams.simulate.world import DAY, MINUTE, SECOND, World

PATTERN_KINDS: Final = ("cash_out", "card_testing", "night_keyed", "amount_shift")
INSTANCES_PER_KIND: Final = 4
_DAYTIME: Final = ("cafe", "grocery", "restaurant", "electronics")


def _label(world: World, kind: str, sale: SimTxn, scenario: str) -> None:
    world.label(
        "SUSPICIOUS_PATTERN",
        "OPEN",
        scenario,
        merchant_id=sale.merchant.merchant_id,
        terminal_id=sale.terminal_id,
        txn_ids=[sale.txn_id],
    )
    world.labels[-1]["pattern"] = kind


def _at_local(world: World, merchant: Merchant, day: int, hour: float) -> int:
    local_midnight = world.start + day * DAY - merchant.region.offset_seconds * SECOND
    return local_midnight + round(hour * 3600) * SECOND


def _round_major(minor: float, currency: str, major_step: int) -> int:
    scale: int = 10 ** exponent(currency) * major_step
    return max(scale, round(minor / scale) * scale)


def _day(world: World, n: int) -> int:
    """Days 1.. so the merchant's profile has a day of history; never the run's last day."""
    return 1 + n % max(1, world.days - 2)


def _force(sale: SimTxn, channel: str, mode: str) -> SimTxn:
    sale.channel, sale.entry_mode = channel, mode
    return sale


def cash_out(world: World, n: int) -> None:
    rng = world.rng
    m = world.fleet[(7 + 6 * n) % len(world.fleet)]
    card = world.fresh_card()
    ts = _at_local(world, m, _day(world, n), m.category.open_hour + rng.uniform(1, 3))
    for k in range(3):
        amount = _round_major(m.median_minor() * rng.uniform(12, 30), m.currency, 10)
        when = ts + k * rng.randrange(14, 22) * MINUTE
        if not world.in_run(when):
            continue
        sale = _force(world.sale(m, m.terminals[0], when, card, amount), "CARD", "SWIPE")
        _label(world, "cash_out", sale, "merchant swipes its own card for large round sums")


def card_testing(world: World, n: int) -> None:
    rng = world.rng
    first = world.fleet[(3 + 5 * n) % len(world.fleet)]
    second = world.fleet[(4 + 5 * n) % len(world.fleet)]
    card = world.fresh_card()
    ts = _at_local(world, first, _day(world, n), first.category.open_hour + rng.uniform(1, 4))
    if not world.in_run(ts + 10 * MINUTE):
        return
    for k, m in enumerate((first, first, first, second)):
        amount = max(1, round(m.median_minor() / rng.uniform(40, 120)))
        status = "DECLINED" if k < 2 else "APPROVED"
        when = ts + k * rng.randrange(60, 140) * SECOND
        sale = _force(world.sale(m, m.terminals[-1], when, card, amount, status), "CARD", "KEYED")
        if status == "APPROVED":
            _label(world, "card_testing", sale, "a keyed card tested with tiny amounts")


def night_keyed(world: World, n: int) -> None:
    rng = world.rng
    daytime = [m for m in world.fleet if m.category.name in _DAYTIME]
    m = daytime[(2 + 3 * n) % len(daytime)]
    ts = _at_local(world, m, _day(world, n), rng.uniform(2.5, 4.5))
    if not world.in_run(ts):
        return
    amount = round(m.median_minor() * rng.uniform(8, 20))
    sale = world.sale(m, m.terminals[0], ts, world.fresh_card(), amount)
    _force(sale, "CARD", "KEYED")
    _label(world, "night_keyed", sale, "high-value keyed sale at night at a daytime shop")


def amount_shift(world: World, n: int) -> None:
    rng = world.rng
    m = world.fleet[(10 + 7 * n) % len(world.fleet)]
    ts = _at_local(
        world, m, _day(world, n), m.category.open_hour + rng.uniform(1, m.category.hours_open - 3)
    )
    for k in range(3):
        when = ts + k * rng.randrange(20, 50) * MINUTE
        if not world.in_run(when):
            continue
        amount = round(m.median_minor() * rng.uniform(25, 60))
        terminal = m.terminals[k % len(m.terminals)]
        sale = world.sale(m, terminal, when, world.fresh_card(), amount)
        _force(sale, "CARD", "CHIP" if k % 2 else "CONTACTLESS")
        _label(world, "amount_shift", sale, "merchant suddenly trading far above its usual amounts")


def suspicious_patterns(world: World) -> None:
    for n in range(INSTANCES_PER_KIND):
        cash_out(world, n)
        card_testing(world, n)
        night_keyed(world, n)
        amount_shift(world, n)
