"""Bank statements (ISO 20022 camt.053, SWIFT MT940) to the contract's pay-out events.

``read_statements`` recognises the format from the content, parses every statement in the file
and checks it whole before anything is returned: a bad statement is an error naming the
statement and entry, never a partial import.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from streams.statements.camt import read_camt053
from streams.statements.model import Entry, Statement, StatementError
from streams.statements.mt940 import read_mt940

__all__ = ["Entry", "Statement", "StatementError", "payouts", "read_statements"]


def read_statements(data: bytes) -> list[Statement]:
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:200]
    if head.startswith(b"<"):
        return read_camt053(data)
    if b":20:" in data:
        return read_mt940(data)
    raise StatementError("neither a camt.053 (XML) nor an MT940 (:20: ... :61: ...) statement")


def payouts(
    statements: list[Statement], merchant: str | None, accounts: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Every booked entry as a pay-out of its account's merchant (``accounts``, else
    ``merchant``), in statement order. A bank reference is its ``payout_id``; one the bank
    gave to several entries of the file (banks reuse them) is made unique with the statement and
    entry number, so neither entry is refused downstream as a conflict."""
    owners: list[str] = []
    for statement in statements:
        owner = accounts.get(statement.account, merchant)
        if owner is None:
            raise StatementError(
                f"statement {statement.ident}: account {statement.account} is in no mapping "
                "(--accounts) and no --merchant was given"
            )
        owners.append(owner)
    uses = Counter(
        (owner, e.payout_id) for owner, s in zip(owners, statements, strict=True) for e in s.entries
    )
    out: list[dict[str, Any]] = []
    for owner, statement in zip(owners, statements, strict=True):
        for entry in statement.entries:
            doc = entry.payout(owner)
            if uses[(owner, entry.payout_id)] > 1:
                doc["payout_id"] = f"{entry.payout_id}/{statement.ident}/{entry.number}"
            out.append(doc)
    return out
