"""Where the simulator's scenarios put things: a merchant by index, a daytime moment, a card
number (for the tests that nothing echoes one)."""

from __future__ import annotations

import random

from streams.cardmask import luhn_valid
from streams.simulate.fleet import Merchant
from streams.simulate.world import DAY, HOUR, SECOND, World


def merchant_at(world: World, index: int) -> Merchant:
    return world.fleet[index % len(world.fleet)]


def daytime(world: World, merchant: Merchant, day: int, lo: float = 10, hi: float = 16) -> int:
    """A moment between ``lo`` and ``hi`` o'clock local time, kept inside UTC ``day``."""
    local_midnight = world.start + day * DAY - merchant.region.offset_seconds * SECOND
    ts = local_midnight + round(world.rng.uniform(lo, hi) * 3600) * SECOND
    floor, ceiling = world.start + day * DAY + HOUR, world.start + (day + 1) * DAY - 2 * HOUR
    return min(max(ts, floor), ceiling)


def card_number(rng: random.Random) -> str:
    """A random 16-digit number that passes Luhn (a card number for the tests of masking)."""
    body = "4" + "".join(str(rng.randrange(10)) for _ in range(14))
    return next(body + d for d in "0123456789" if luhn_valid(body + d))
