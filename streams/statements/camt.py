"""ISO 20022 camt.053 (bank-to-customer statement) to statement entries.

Strict: any version of the message (the namespace names it), read with ``defusedxml`` (no DTD,
no entity expansion: a statement comes from outside). Booked entries only (``Sts`` ``BOOK``);
pending and information-only entries are counted, not imported. Each booked entry must carry an
amount and currency, a credit/debit mark and a value date (or else a booking date); any violation
is an error naming the statement and entry. Its ``payout_id`` is ``AcctSvcrRef``, else
``NtryRef``, else the statement id and the entry's number.
Transaction details that do not add up to their entry, and booked entries that do not take the
opening balance to the closing one, are warnings (errors with ``--strict``): hand-made statements
often do not balance, a truncated one does not either.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from streams.statements.model import Entry, Statement, StatementError, minor_units, utc_date

_NOT_PROVIDED: Final = "NOTPROVIDED"
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(node: Element, *path: str) -> Element | None:
    found: Element | None = node
    for name in path:
        if found is None:
            return None
        found = next((c for c in found if _local(c.tag) == name), None)
    return found


def _children(node: Element, name: str) -> list[Element]:
    return [c for c in node if _local(c.tag) == name]


def _text(node: Element, *path: str) -> str | None:
    found = _child(node, *path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def read_camt053(data: bytes) -> list[Statement]:
    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise StatementError(f"not readable XML: {exc}") from None
    namespace = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    if _local(root.tag) != "Document" or "camt.053" not in namespace:
        raise StatementError(
            f"not a camt.053 statement (root {_local(root.tag)!r}, namespace {namespace!r})"
        )
    message = _child(root, "BkToCstmrStmt")
    if message is None:
        raise StatementError("camt.053 document without BkToCstmrStmt")
    statements = [_statement(node, n) for n, node in enumerate(_children(message, "Stmt"), 1)]
    if not statements:
        raise StatementError("camt.053 document without a statement (Stmt)")
    return statements


def _statement(node: Element, number: int) -> Statement:
    ident = _text(node, "Id") or f"statement {number}"
    account = _text(node, "Acct", "Id", "IBAN") or _text(node, "Acct", "Id", "Othr", "Id")
    if account is None:
        raise StatementError(f"statement {ident}: no account (Acct/Id/IBAN or Othr/Id)")
    statement = Statement(ident, account, _text(node, "Acct", "Ccy"))
    balances = {_balance_type(b): b for b in _children(node, "Bal")}
    for n, entry in enumerate(_children(node, "Ntry"), 1):
        where = f"statement {ident}, entry {n}"
        status = _text(entry, "Sts", "Cd") or _text(entry, "Sts")
        if status is None:
            raise StatementError(f"{where}: no status (Sts)")
        if status != "BOOK":
            statement.skipped.append(f"{where}: {status}")
            continue
        statement.entries.append(_entry(entry, n, where, statement.warnings, f"{ident}/{n}"))
    _check_balances(statement, balances)
    return statement


def _amount(node: Element | None, where: str) -> tuple[int, str]:
    if node is None or node.text is None:
        raise StatementError(f"{where}: no amount (Amt)")
    currency = node.get("Ccy")
    if currency is None:
        raise StatementError(f"{where}: the amount has no currency (Amt/@Ccy)")
    return minor_units(node.text.strip(), currency, where), currency


def _entry(node: Element, number: int, where: str, warnings: list[str], fallback_id: str) -> Entry:
    amount, currency = _amount(_child(node, "Amt"), where)
    mark = _text(node, "CdtDbtInd")
    if mark not in ("CRDT", "DBIT"):
        raise StatementError(f"{where}: CdtDbtInd is {mark!r}, not CRDT or DBIT")
    signed = amount if mark == "CRDT" else -amount
    moment = _text(node, "ValDt", "Dt") or _text(node, "ValDt", "DtTm")
    moment = moment or _text(node, "BookgDt", "Dt") or _text(node, "BookgDt", "DtTm")
    if moment is None:
        raise StatementError(f"{where}: no value date (ValDt) or booking date (BookgDt)")
    value_date = utc_date(moment, where) if _DATE.fullmatch(moment) else _timestamp(moment, where)
    reference = _text(node, "AcctSvcrRef") or _text(node, "NtryRef") or fallback_id
    details = [
        d for block in _children(node, "NtryDtls") for d in _children(block, "TxDtls")
    ]  # fmt: skip
    batch_ids: list[str] = []
    stated = 0
    with_amounts = 0
    for d in details:
        end_to_end = _text(d, "Refs", "EndToEndId")
        if end_to_end and end_to_end != _NOT_PROVIDED and end_to_end not in batch_ids:
            batch_ids.append(end_to_end)
        amt = _child(d, "Amt")
        if amt is None:
            amt = _child(d, "AmtDtls", "TxAmt", "Amt")
        if amt is not None:
            part, part_currency = _amount(amt, where)
            if part_currency == currency:
                stated += part
                with_amounts += 1
    if with_amounts == len(details) > 1 and stated != amount:
        warnings.append(
            f"{where}: its {len(details)} transaction details add up to {stated} minor units, "
            f"the entry is {amount}"
        )
    return Entry(
        number=number,
        payout_id=reference,
        amount_minor=signed,
        currency=currency,
        value_date=value_date,
        batch_ids=batch_ids,
        bank_reference=_text(node, "NtryRef"),
    )


def _timestamp(text: str, where: str) -> str:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise StatementError(f"{where}: {text!r} is not a date or a date-time") from None
    if moment.tzinfo is None:
        raise StatementError(f"{where}: the date-time {text!r} has no UTC offset")
    return moment.isoformat()


def _balance_type(node: Element) -> str:
    return _text(node, "Tp", "CdOrPrtry", "Cd") or _text(node, "Tp", "CdOrPrtry", "Prtry") or "?"


def _check_balances(statement: Statement, balances: dict[str, Element]) -> None:
    """Opening balance plus the booked entries is the closing balance (when both are given):
    a truncated or edited statement is refused rather than half imported."""
    opening = balances.get("OPBD")
    if opening is None:
        opening = balances.get("PRCD")
    closing = balances.get("CLBD")
    if opening is None or closing is None:
        return
    where = f"statement {statement.ident}"
    values = []
    for node in (opening, closing):
        amount, currency = _amount(_child(node, "Amt"), f"{where}, balance")
        sign = -1 if _text(node, "CdtDbtInd") == "DBIT" else 1
        values.append((sign * amount, currency))
    (start, currency), (end, _) = values
    moved = sum(e.amount_minor for e in statement.entries if e.currency == currency)
    if start + moved != end:
        statement.warnings.append(
            f"{where}: the booked entries take the opening balance {start} to {start + moved}, "
            f"but the closing balance is {end} (minor units of {currency}): the statement is "
            "incomplete or altered"
        )
