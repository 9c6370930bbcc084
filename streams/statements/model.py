"""A bank statement's entries, as both parsers give them, and the checks they share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from streams.money import exponent

_AMOUNT: Final = re.compile(r"\d{1,18}([.,]\d{1,6})?")
_CURRENCY: Final = re.compile(r"[A-Z]{3}")


class StatementError(ValueError):
    """A statement that cannot be imported; the message names the statement and entry."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One booked statement entry: a credit (positive) or a debit (negative)."""

    number: int
    """Its position in its statement (1-based)."""
    payout_id: str
    amount_minor: int
    currency: str
    value_date: str
    """RFC 3339 (a date is midnight UTC)."""
    batch_ids: list[str]
    bank_reference: str | None = None

    def payout(self, merchant_id: str) -> dict[str, Any]:
        """The contract's pay-out event."""
        doc: dict[str, Any] = {
            "payout_id": self.payout_id,
            "merchant_id": merchant_id,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "value_date": self.value_date,
        }
        if self.batch_ids:
            doc["batch_ids"] = self.batch_ids
        if self.bank_reference is not None:
            doc["bank_reference"] = self.bank_reference
        return doc


@dataclass(slots=True)
class Statement:
    ident: str
    account: str
    currency: str | None
    entries: list[Entry] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Entries not imported (not booked), and why."""
    warnings: list[str] = field(default_factory=list)
    """What does not add up (balances, batched details): errors with ``--strict``."""


def minor_units(text: str, currency: str, where: str) -> int:
    """A statement amount (``1234.50`` or SWIFT's ``1234,50``) in exact minor units."""
    if not _CURRENCY.fullmatch(currency):
        raise StatementError(f"{where}: {currency!r} is not an ISO 4217 currency code")
    if not _AMOUNT.fullmatch(text):
        raise StatementError(f"{where}: {text!r} is not an amount")
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise StatementError(f"{where}: {text!r} is not an amount") from None
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise StatementError(
            f"{where}: {text} {currency} has more decimals than {currency} has "
            f"({exponent(currency)})"
        )
    return int(scaled)


def utc_date(day: str, where: str) -> str:
    """A statement date ``YYYY-MM-DD`` as the RFC 3339 midnight UTC it stands for."""
    try:
        date.fromisoformat(day)
    except ValueError:
        raise StatementError(f"{where}: {day!r} is not a date") from None
    return f"{day}T00:00:00Z"
