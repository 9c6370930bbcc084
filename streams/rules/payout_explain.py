"""What explains a difference between a pay-out and the batches it pays, when the lines allow it:
lines left out of the pay-out, a fee deducted at another rate than the lines' (the rate is found
from the amounts), or else a deduction (or surplus) that no line accounts for."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final

from streams.money import expected_fee, format_amount, format_rate
from streams.rules.payout_match import Batch, batch_name

if TYPE_CHECKING:
    from streams.engine.state import MerchantState
    from streams.events import Settlement

_MAX_NAMED_LINES: Final = 200
"""Lines named in an explanation at most (the counts cover them all)."""
_MAX_FEE_RATE: Final = Fraction(1, 10)
"""A pay-out short by more than 10 % of the gross is not read as a fee."""


@dataclass(frozen=True, slots=True)
class Line:
    """A line of a paid batch, as the ledger holds it."""

    settlement_id: str
    net: int
    gross: int
    fee: int


def batch_lines(ms: MerchantState | None, batch: Batch) -> list[Settlement]:
    """The lines of ``batch`` its merchant's ledger still retains, in settlement-id order."""
    if ms is None:
        return []
    found = [
        line
        for line in ms.settlements.values()
        if line.status == "SETTLED"
        and line.currency == batch.currency
        and (line.batch_id is None) == batch.by_day
        and batch_name(line.batch_id, line.ts) == batch.name
    ]
    found.sort(key=lambda line: line.settlement_id)
    return found


def as_lines(settlements: list[Settlement]) -> list[Line]:
    return [Line(x.settlement_id, x.net_minor, x.gross_minor, x.fee_minor) for x in settlements]


def explain(difference: int, lines: list[Line], currency: str, tolerance: int) -> dict[str, Any]:
    """Why a pay-out differs by ``difference`` (paid minus due) from the ``lines`` it pays: a
    dict with ``kind``, the ``settlement_ids`` that explain it, and a sentence."""
    missing = _left_out(-difference, lines, tolerance)
    if missing is not None:
        total = sum(line.net for line in missing)
        ids = [line.settlement_id for line in missing]
        return {
            "kind": "LINES_NOT_PAID",
            "settlement_ids": ids,
            "amount_minor": total,
            "text": (
                f"{_named(ids)} ({format_amount(total, currency)}) "
                f"{'is' if len(ids) == 1 else 'are'} in the batch but not in the pay-out"
            ),
        }
    fee = _fee_rate(difference, lines)
    if fee is not None:
        rate, changed = fee
        ids = [line.settlement_id for line in changed]
        return {
            "kind": "FEE_OFF_SCHEDULE",
            "settlement_ids": ids[:_MAX_NAMED_LINES],
            "lines": len(ids),
            "amount_minor": -difference,
            "fee_rate": format_rate(rate),
            "text": (
                f"the pay-out deducts fees at {format_rate(rate)} of the gross, not the fees "
                f"on the lines: {format_amount(-difference, currency)} more over {len(ids)} "
                f"line{'s' if len(ids) != 1 else ''}"
            ),
        }
    what = "DEDUCTION" if difference < 0 else "SURPLUS"
    return {
        "kind": what,
        "settlement_ids": [],
        "amount_minor": abs(difference),
        "text": (
            f"{'a deduction' if difference < 0 else 'a surplus'} of "
            f"{format_amount(abs(difference), currency)} that no settlement line explains "
            f"({'a chargeback, a reserve or a charge' if difference < 0 else 'ask the acquirer'})"
        ),
    }


def _left_out(short: int, lines: list[Line], tolerance: int) -> list[Line] | None:
    """One line, or two, whose nets add up to ``short`` (what the pay-out lacks)."""
    if short == 0:
        return None
    for line in lines:
        if abs(line.net - short) <= tolerance:
            return [line]
    seen: dict[int, Line] = {}
    for line in lines:
        other = seen.get(short - line.net)
        if other is not None:
            return [other, line]
        seen.setdefault(line.net, line)
    return None


def _fee_rate(difference: int, lines: list[Line]) -> tuple[Fraction, list[Line]] | None:
    """A fee rate (in steps of 0.01 %) that, charged on every line's gross instead of its own
    fee, gives the pay-out exactly; with the lines whose fee it changes."""
    if difference >= 0 or not lines:
        return None
    gross = sum(x.gross for x in lines)
    fees = sum(x.fee for x in lines)
    if gross <= 0:
        return None
    charged = fees - difference  # the fees the pay-out implies
    if charged * _MAX_FEE_RATE.denominator > gross * _MAX_FEE_RATE.numerator:
        return None
    exact = Fraction(charged, gross) * 10_000
    guess = round(exact)
    fitting = [
        bp
        for bp in range(max(1, guess - 2), guess + 3)
        if sum(expected_fee(x.gross, Fraction(bp, 10_000)) for x in lines) == charged
    ]
    if not fitting:
        return None
    # Of the rates that fit (few lines leave several), the one a schedule would say: 1.20 %
    # before 1.25 % before 1.21 %.
    bp = min(fitting, key=lambda b: (b % 10 != 0, b % 5 != 0, abs(b - exact)))
    rate = Fraction(bp, 10_000)
    return rate, [x for x in lines if expected_fee(x.gross, rate) != x.fee]


def _named(ids: list[str]) -> str:
    return f"line {ids[0]}" if len(ids) == 1 else "lines " + ", ".join(ids)
