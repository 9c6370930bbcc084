"""Which settlement batches a pay-out pays.

Pure arithmetic on integers in minor units, used by the pay-out rule (``payouts.py``).

A pay-out that names its batches (``batch_ids``) pays exactly those. One that does not is matched
the way a reconciler matches a bank credit: among the merchant's unpaid batches in its currency,
settled within a window before its value date, first an exact amount (one batch, then the oldest
batches together, then any few of them), and only then the nearest (a short or over payment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from itertools import combinations
from typing import Any, Final

_MAX_SUBSET_CANDIDATES: Final = 12
"""Unpaid batches searched for an exact subset (2**12 sums at most)."""
_MAX_SUBSET_SIZE: Final = 4


@dataclass(slots=True)
class Batch:
    """The SETTLED lines of one merchant and currency with one ``batch_id`` (or, without one,
    one UTC date of ``settled_at``), and whether a pay-out paid it."""

    merchant_id: str
    currency: str
    name: str
    """The ``batch_id``, or ``day YYYY-MM-DD`` for lines without one (``by_day``)."""
    by_day: bool = False
    net: int = 0
    settled_us: int = 0
    """The latest ``settled_at`` of its lines."""
    count: int = 0
    """Its lines (the ledger holds them: ``payout_explain.batch_lines``)."""
    paid_by: str | None = None
    missing: Any = None
    """Its PAYOUT_MISSING alert (``streams.alerts.Alert``), once raised."""

    @property
    def label(self) -> str:
        return f"UTC {self.name}" if self.by_day else self.name


def exact_match(amount: int, candidates: list[Batch], tolerance: int) -> list[Batch] | None:
    """The batches ``amount`` pays exactly (within ``tolerance``), ``candidates`` oldest first:
    one batch, else the oldest batches together, else the smallest few that add up."""
    for batch in candidates:
        if abs(batch.net - amount) <= tolerance:
            return [batch]
    total = 0
    for k, batch in enumerate(candidates):
        total += batch.net
        if k and abs(total - amount) <= tolerance:
            return candidates[: k + 1]
    pool = candidates[:_MAX_SUBSET_CANDIDATES]
    for size in range(2, min(_MAX_SUBSET_SIZE, len(pool)) + 1):
        for subset in combinations(pool, size):
            if abs(sum(b.net for b in subset) - amount) <= tolerance:
                return list(subset)
    return None


def nearest_match(amount: int, candidates: list[Batch], share: Fraction) -> list[Batch] | None:
    """The batches ``amount`` most likely pays short or over: the single batch or the oldest
    batches together whose net is nearest, when the difference is at most ``share`` of it."""
    options: list[list[Batch]] = [[b] for b in candidates]
    options += [candidates[: k + 1] for k in range(1, len(candidates))]
    best: list[Batch] | None = None
    best_diff = 0
    for option in options:
        net = sum(b.net for b in option)
        diff = abs(amount - net)
        close = net != 0 and diff * share.denominator <= abs(net) * share.numerator
        if close and (best is None or diff < best_diff):
            best, best_diff = option, diff
    return best


@dataclass(slots=True)
class Paid:
    """A pay-out as the rule follows it."""

    payout_id: str
    merchant_id: str
    currency: str
    amount: int
    value_us: int
    batch_ids: list[str] | None
    state: str = "PENDING"
    """PENDING (pays nothing known yet), MATCHED, UNEXPLAINED (alert raised, still matchable),
    DEBIT (a debit paying nothing: a charge), REVERSED."""
    batches: list[str] = field(default_factory=list)
    alert: Any = None
    """Its UNEXPLAINED_CREDIT alert, once raised."""


def as_row(item: Batch | Paid) -> tuple[Any, ...]:
    """A batch's or a pay-out's fields in order, as its snapshot keeps them."""
    return tuple(getattr(item, name) for name in item.__slots__)


def batch_name(batch_id: str | None, ts: int) -> str:
    """The name of a line's batch: its ``batch_id``, or its UTC date of settlement."""
    if batch_id is not None:
        return batch_id
    return "day " + datetime.fromtimestamp(ts / 1e6, UTC).strftime("%Y-%m-%d")
