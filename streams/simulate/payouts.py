"""What the acquirer pays into each merchant's bank account for its settlement batches, with the
faults a reconciliation desk sees, each labelled.

A batch is the SETTLED lines of one merchant, currency and ``batch_id`` (the contract's batch);
its pay-out is credited at midnight UTC after the day its last line settled. Most merchants'
pay-outs name their batch (``batch_ids``); every third merchant's do not (matched by amount), and
every fifth merchant is paid two batches in one credit. The faults: a pay-out days late, one
never paid, one short by a line, one paid at a higher fee rate, one with a deduction, two credits
nobody can explain; and look-alikes that must raise nothing: bank charges, a credit reversed and
paid again, and one merchant's statement arriving two days after everybody else's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final

from streams.money import expected_fee
from streams.simulate.fleet import Merchant
from streams.simulate.picks import merchant_at
from streams.simulate.records import SimLine
from streams.simulate.world import DAY, World
from streams.timefmt import format_us

_HIGHER_FEE: Final = Fraction(12, 1000)


@dataclass(slots=True)
class SimBatch:
    merchant_id: str
    currency: str
    batch_id: str
    lines: list[SimLine] = field(default_factory=list)

    @property
    def net(self) -> int:
        return sum(line.net_minor for line in self.lines)

    @property
    def settled(self) -> int:
        return max(line.ts for line in self.lines)


@dataclass(slots=True)
class SimPayout:
    payout_id: str
    merchant_id: str
    amount_minor: int
    currency: str
    value_ts: int
    batch_ids: list[str] | None
    bank_reference: str

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "payout_id": self.payout_id,
            "merchant_id": self.merchant_id,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "value_date": format_us(self.value_ts),
        }
        if self.batch_ids is not None:
            doc["batch_ids"] = self.batch_ids
        doc["bank_reference"] = self.bank_reference
        return doc


def value_date(settled: int) -> int:
    """Midnight UTC after the day of ``settled``."""
    return (settled // DAY + 1) * DAY


def batches(world: World) -> dict[str, list[SimBatch]]:
    """Each merchant's batches, oldest first."""
    found: dict[tuple[str, str, str], SimBatch] = {}
    for line in world.lines:
        if line.status != "SETTLED":
            continue
        key = (line.merchant_id, line.currency, line.batch_id)
        found.setdefault(key, SimBatch(*key)).lines.append(line)
    out: dict[str, list[SimBatch]] = {}
    for batch in sorted(found.values(), key=lambda b: (b.settled, b.batch_id)):
        out.setdefault(batch.merchant_id, []).append(batch)
    return out


def pay_out(world: World) -> list[SimPayout]:
    """Every pay-out of the run, in value-date order, with the faults labelled on ``world``."""
    by_merchant = batches(world)
    paid: list[SimPayout] = []
    seq = iter(range(1, 10**7))

    def credit(
        merchant_id: str, currency: str, amount: int, ts: int, names: list[str] | None
    ) -> SimPayout:
        n = next(seq)
        payout = SimPayout(f"PO{n:07d}", merchant_id, amount, currency, ts, names, f"ACQ{n:07d}")
        paid.append(payout)
        return payout

    chosen = _distinct_merchants(world, 8)
    faults = _faults(world, chosen[:6])
    for index, merchant in enumerate(world.fleet):
        named = index % 3 != 2
        pairs = index % 5 == 4
        merchant_batches = by_merchant.get(merchant.merchant_id, [])
        k = 0
        while k < len(merchant_batches):
            group = merchant_batches[k : k + (2 if pairs else 1)]
            k += len(group)
            first = group[0]
            fault = faults.get((merchant.merchant_id, first.batch_id))
            names = [b.batch_id for b in group] if named or fault is not None else None
            amount = sum(b.net for b in group)
            ts = value_date(max(b.settled for b in group))
            if fault is not None:
                fault(world, group, credit, amount, ts)
                continue
            credit(merchant.merchant_id, first.currency, amount, ts, names)
    _unexplained(world, by_merchant, credit, chosen[6:8])
    paid.sort(key=lambda p: (p.value_ts, p.payout_id))
    return _late_statement(world, paid, {m.merchant_id for m in chosen})


def _distinct_merchants(world: World, count: int) -> list[Merchant]:
    """``count`` merchants paid one batch at a time, each used once (from index 7 on, past
    the merchants the other scenarios use first)."""
    found: list[Merchant] = []
    for index in range(7, 7 + 3 * len(world.fleet)):
        merchant = merchant_at(world, index)
        if index % len(world.fleet) % 5 != 4 and merchant not in found:
            found.append(merchant)
        if len(found) == count:
            return found
    raise ValueError(f"a fleet of {len(world.fleet)} merchants is too small for the pay-outs")


def _late_statement(world: World, paid: list[SimPayout], busy: set[str]) -> list[SimPayout]:
    """One merchant's statements from the run's fourth day on arrive after everybody else's
    (last in the file): its batches wait for them, nothing is missing. The merchant is one
    paid before that day (its statements are known to run late), and no other scenario's."""
    cut = world.start + 3 * DAY
    paid_before = {p.merchant_id for p in paid if p.value_ts < cut and p.amount_minor > 0}
    candidates = [m.merchant_id for m in world.fleet if m.merchant_id in paid_before - busy]
    if not candidates:
        return paid
    merchant_id = candidates[-1]
    late = [p for p in paid if p.merchant_id == merchant_id and p.value_ts >= cut]
    return [p for p in paid if p not in late] + late


_Credit = Callable[[str, str, int, int, list[str] | None], SimPayout]
_Fault = Callable[[World, list[SimBatch], _Credit, int, int], None]


def _faults(world: World, chosen: list[Merchant]) -> dict[tuple[str, str], _Fault]:
    """The first batch of each ``chosen`` merchant gets a fault."""
    out: dict[tuple[str, str], _Fault] = {}
    day1 = world.start + DAY
    for merchant, fault in zip(
        chosen, (_late, _never, _short_line, _fee, _deduction, _reversal), strict=True
    ):
        batch_id = next(
            (line.batch_id for line in sorted(world.lines, key=lambda x: x.ts)
             if line.merchant_id == merchant.merchant_id and line.ts >= day1
             and line.status == "SETTLED"),
            None,
        )  # fmt: skip
        if batch_id is not None:
            out[(merchant.merchant_id, batch_id)] = fault
    return out


def _ids(group: list[SimBatch]) -> list[str]:
    return [line.settlement_id for b in group for line in b.lines]


def _late(world: World, group: list[SimBatch], credit: _Credit, amount: int, ts: int) -> None:
    b = group[0]
    payout = credit(b.merchant_id, b.currency, amount, ts + 3 * DAY, None)
    world.label(
        "PAYOUT_MISSING", "RESOLVED", "the pay-out came three days late",
        merchant_id=b.merchant_id, settlement_ids=_ids(group), payout_ids=[payout.payout_id],
    )  # fmt: skip


def _never(world: World, group: list[SimBatch], credit: _Credit, amount: int, ts: int) -> None:
    b = group[0]
    world.label(
        "PAYOUT_MISSING", "OPEN", "the batch was never paid",
        merchant_id=b.merchant_id, settlement_ids=_ids(group),
    )  # fmt: skip


def _short_line(world: World, group: list[SimBatch], credit: _Credit, amount: int, ts: int) -> None:
    b = group[0]
    left_out = max(b.lines, key=lambda line: (line.net_minor, line.settlement_id))
    payout = credit(b.merchant_id, b.currency, amount - left_out.net_minor, ts, [b.batch_id])
    world.label(
        "PAYOUT_MISMATCH", "OPEN", "the pay-out left one line out",
        merchant_id=b.merchant_id, settlement_ids=[left_out.settlement_id],
        payout_ids=[payout.payout_id],
    )  # fmt: skip


def _fee(world: World, group: list[SimBatch], credit: _Credit, amount: int, ts: int) -> None:
    b = group[0]
    at_higher = sum(x.gross_minor - expected_fee(x.gross_minor, _HIGHER_FEE) for x in b.lines)
    payout = credit(b.merchant_id, b.currency, at_higher, ts, None)
    world.label(
        "PAYOUT_MISMATCH", "OPEN", "the pay-out deducted fees at 1.2 %",
        merchant_id=b.merchant_id, payout_ids=[payout.payout_id],
    )  # fmt: skip


def _deduction(world: World, group: list[SimBatch], credit: _Credit, amount: int, ts: int) -> None:
    b = group[0]
    payout = credit(b.merchant_id, b.currency, amount - 2_500, ts, [b.batch_id])
    world.label(
        "PAYOUT_MISMATCH", "OPEN", "the acquirer deducted 25.00 nobody explained",
        merchant_id=b.merchant_id, payout_ids=[payout.payout_id],
    )  # fmt: skip


def _reversal(world: World, group: list[SimBatch], credit: _Credit, amount: int, ts: int) -> None:
    """Credited, reversed the next day, credited again a day later: nothing to alert."""
    b = group[0]
    credit(b.merchant_id, b.currency, amount, ts, [b.batch_id])
    credit(b.merchant_id, b.currency, -amount, ts + DAY, [b.batch_id])
    credit(b.merchant_id, b.currency, amount, ts + 2 * DAY, [b.batch_id])


def _unexplained(
    world: World,
    by_merchant: dict[str, list[SimBatch]],
    credit: _Credit,
    chosen: list[Merchant],
) -> None:
    """Two credits nobody can explain (one naming a batch that never settled), and bank charges
    (debits paying nothing), on the run's second day."""
    ts = world.start + 2 * DAY
    for n, merchant in enumerate(chosen):
        nets = [b.net for b in by_merchant.get(merchant.merchant_id, [])] or [1_000_000]
        amount = max(100, min(nets) // 9) + 17  # far from any batch of theirs
        names = None if n == 0 else ["B-UNKNOWN-7731"]
        payout = credit(merchant.merchant_id, merchant.currency, amount, ts, names)
        world.label(
            "UNEXPLAINED_CREDIT", "OPEN", "a credit that pays no settlement batch",
            merchant_id=merchant.merchant_id, payout_ids=[payout.payout_id],
        )  # fmt: skip
    for index in (1, 2, 3):
        merchant = merchant_at(world, index)
        credit(merchant.merchant_id, merchant.currency, -1_250, ts, None)
