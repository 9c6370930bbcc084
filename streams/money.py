"""Money in integer minor units: fee arithmetic and display.

Fee rates are exact fractions (``Fraction`` from the configured decimal text), so the expected fee
``round-half-up(gross * rate)`` is computed in integers with no float anywhere.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Final

# ISO 4217 minor-unit exponents that differ from 2.
_EXPONENTS: Final = {
    **dict.fromkeys(
        [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
}


def exponent(currency: str) -> int:
    """Number of minor-unit digits of a currency (2 unless ISO 4217 says otherwise)."""
    return _EXPONENTS.get(currency, 2)


def format_amount(minor: int, currency: str) -> str:
    """``1234567, "CNY"`` -> ``"12,345.67 CNY"``; exact, no float."""
    exp = exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exp)
    text = f"{whole:,}" + (f".{frac:0{exp}d}" if exp else "")
    return f"{sign}{text} {currency}"


def parse_rate(value: str | int | float) -> Fraction:
    """A configured fee rate (``"0.60%"``, ``"0.006"`` or ``0.006``) as an exact ``Fraction``."""
    text = str(value).strip()
    percent = text.endswith("%")
    try:
        number = Decimal(text.rstrip("%").strip())
    except InvalidOperation:
        raise ValueError(f"expected a rate like '0.60%' or 0.006, got {value!r}") from None
    rate = Fraction(number) / (100 if percent else 1)
    if not 0 <= rate < 1:
        raise ValueError(f"a fee rate must be between 0 and 100%, got {value!r}")
    return rate


def expected_fee(gross_minor: int, rate: Fraction) -> int:
    """round-half-up(gross * rate) in integer arithmetic (gross is never negative)."""
    return fee_of(gross_minor, rate.numerator, rate.denominator)


def fee_of(gross_minor: int, numerator: int, denominator: int) -> int:
    """``expected_fee`` for a rate given as its numerator and denominator (a ``Fraction``'s are
    Python properties, slow to read once per settlement line)."""
    return (2 * gross_minor * numerator + denominator) // (2 * denominator)


def format_rate(rate: Fraction) -> str:
    """``Fraction(3, 500)`` -> ``"0.60%"``."""
    return f"{Decimal(rate.numerator * 100) / Decimal(rate.denominator):.2f}%"
