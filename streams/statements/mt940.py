"""SWIFT MT940 (customer statement) to statement entries, read with the maintained ``mt-940``
parser (field grammar, multi-statement files, bank quirks), then checked here.

Every ``:61:`` line must have been read. Entries that do not take the opening balance
(``:60F:`` or ``:60M:``) to the closing one (``:62F:``/``:62M:``) are a warning (an error with
``--strict``). The debit/credit mark gives the sign: ``C`` and ``RD`` (a reversed debit) credit,
``D`` and ``RC`` (a reversed credit) debit. ``payout_id`` is the bank reference (after ``//``),
else the statement reference and the entry's number; ``batch_ids`` is the customer reference
unless ``NONREF``.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from typing import Any, Final

import mt940

from streams.statements.model import Entry, Statement, StatementError, minor_units, utc_date

_STATEMENT_LINE: Final = re.compile(r"^:61:", re.MULTILINE)
_CREDITS: Final = frozenset({"C", "RD"})
_DEBITS: Final = frozenset({"D", "RC"})


def read_mt940(data: bytes) -> list[Statement]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # SWIFT's character set is a subset of both
    text = text.replace("\r\n", "\n")
    library_log = logging.getLogger("mt940")
    level = library_log.level
    library_log.setLevel(logging.CRITICAL)  # its own report of a bad field is the regex it tried
    try:
        try:
            blocks = mt940.parse_statements(text)
        except Exception:
            asn = mt940.tags.StatementASNB()
            blocks = mt940.parse_statements(text, tags={asn.id: asn})
    except Exception as exc:  # the library raises several types on malformed fields
        args = exc.args
        if len(args) == 3 and hasattr(args[1], "id"):
            raise StatementError(
                f"the :{args[1].id}: field {args[2]!r} is malformed (SWIFT MT940 syntax)"
            ) from None
        raise StatementError(f"not a readable MT940 statement: {exc}") from None
    finally:
        library_log.setLevel(level)
    statements = [_statement(block, n) for n, block in enumerate(blocks, 1) if len(block) or (
        block.data.get("transaction_reference")
    )]  # fmt: skip
    if not statements:
        raise StatementError("no MT940 statement (:20:) found")
    expected = len(_STATEMENT_LINE.findall(text))
    read = sum(len(s.entries) for s in statements)
    if read != expected:
        raise StatementError(
            f"{expected} statement lines (:61:) in the file, {read} readable: a malformed "
            ":61: line (date, mark, amount or reference) was not understood"
        )
    return statements


def _statement(block: Any, number: int) -> Statement:
    data = block.data
    ident = str(data.get("transaction_reference") or f"statement {number}")
    account = data.get("account_identification")
    if not account:
        raise StatementError(f"statement {ident}: no account (:25:)")
    opening = data.get("final_opening_balance") or data.get("intermediate_opening_balance")
    currency = opening.amount.currency if opening is not None else None
    statement = Statement(ident, str(account), currency)
    for n, line in enumerate(block, 1):
        statement.entries.append(_entry(line.data, n, ident))
    closing = data.get("final_closing_balance") or data.get("intermediate_closing_balance")
    if opening is not None and closing is not None:
        where = f"statement {ident}"
        start = _signed(opening.amount, opening.status, where)
        end = _signed(closing.amount, closing.status, where)
        moved = sum(e.amount_minor for e in statement.entries)
        if start + moved != end:
            statement.warnings.append(
                f"{where}: the entries take the opening balance {start} to {start + moved}, but "
                f"the closing balance is {end} (minor units of {currency}): the statement is "
                "incomplete or altered"
            )
    return statement


def _signed(amount: Any, status: str, where: str) -> int:
    minor = minor_units(_plain(amount.amount), amount.currency, where)
    return -minor if status == "D" else minor


def _plain(value: Decimal) -> str:
    return format(abs(value), "f")


def _entry(data: dict[str, Any], number: int, ident: str) -> Entry:
    where = f"statement {ident}, entry {number}"
    mark = str(data.get("status") or "")
    if mark not in _CREDITS | _DEBITS:
        raise StatementError(f"{where}: the debit/credit mark is {mark!r}")
    amount = data["amount"]
    minor = minor_units(_plain(amount.amount), amount.currency, where)
    date = data.get("date")
    if date is None:
        raise StatementError(f"{where}: no value date")
    reference = str(data.get("bank_reference") or "").strip()
    if reference == "NONREF":
        reference = ""
    customer = str(data.get("customer_reference") or "").strip()
    return Entry(
        number=number,
        payout_id=reference or f"{ident}/{number}",
        amount_minor=minor if mark in _CREDITS else -minor,
        currency=amount.currency,
        value_date=utc_date(date.isoformat(), where),
        batch_ids=[] if customer in ("", "NONREF") else [customer],
        bank_reference=reference or None,
    )
