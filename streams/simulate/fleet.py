"""A merchant fleet: regions with their offsets and currencies, categories with their prices and
opening hours, terminals, channel mix."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from streams.money import exponent


@dataclass(frozen=True, slots=True)
class Region:
    offset_seconds: int
    currency: str
    major_scale: float  # price level of one "major unit" of the reference basket
    qr_share: float


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    median_major: float
    open_hour: int  # local time
    hours_open: int
    daily_weight: float


REGIONS: Final = (
    Region(8 * 3600, "CNY", 7.0, 0.55),
    Region(0, "GBP", 0.8, 0.05),
    Region(3600, "EUR", 0.9, 0.08),
    Region(-5 * 3600, "USD", 1.0, 0.03),
    Region(9 * 3600, "JPY", 150.0, 0.15),
)
CATEGORIES: Final = (
    Category("cafe", 5.0, 7, 12, 1.6),
    Category("grocery", 30.0, 8, 14, 1.2),
    Category("restaurant", 45.0, 11, 12, 0.8),
    Category("electronics", 400.0, 10, 10, 0.3),
    Category("fuel", 55.0, 0, 24, 1.0),
    Category("bar", 25.0, 18, 10, 0.7),  # open past midnight
)


@dataclass(frozen=True, slots=True)
class Merchant:
    merchant_id: str
    region: Region
    category: Category
    terminals: tuple[str, ...]
    size: float  # traffic multiplier

    @property
    def currency(self) -> str:
        return self.region.currency

    def median_minor(self) -> int:
        major = self.category.median_major * self.region.major_scale
        scale: int = 10 ** exponent(self.currency)
        return max(1, round(major * scale))


def build_fleet(rng: random.Random, count: int) -> list[Merchant]:
    """``count`` merchants; regions are assigned round-robin so every region is present."""
    fleet = []
    for i in range(count):
        region = REGIONS[i % len(REGIONS)]
        category = CATEGORIES[rng.randrange(len(CATEGORIES))]
        merchant_id = f"M{i + 1:04d}"
        n_terminals = 1 + min(5, int(rng.expovariate(0.6)))
        terminals = tuple(f"{merchant_id}-T{j + 1:02d}" for j in range(n_terminals))
        size = rng.lognormvariate(0, 0.5) * category.daily_weight
        fleet.append(Merchant(merchant_id, region, category, terminals, size))
    return fleet
