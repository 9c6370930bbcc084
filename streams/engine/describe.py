"""Small text helpers for alert summaries and details (amounts and times an operator reads)."""

from __future__ import annotations

from typing import Any

from streams.events import Settlement, Transaction
from streams.money import format_amount
from streams.timefmt import format_us, offset_of


def local_time(txn: Transaction) -> str:
    """The transaction's event time in the terminal's own offset."""
    return format_us(txn.ts, offset_of(txn.event_time))


def txn_evidence(txn: Transaction) -> dict[str, Any]:
    """The facts of a transaction an operator checks first (no card number can be here)."""
    return {
        "txn_id": txn.txn_id,
        "type": txn.type,
        "status": txn.status,
        "amount_minor": txn.amount_minor,
        "amount": format_amount(txn.amount_minor, txn.currency),
        "currency": txn.currency,
        "channel": txn.channel,
        "terminal_id": txn.terminal_id,
        "event_time": local_time(txn),
    }


def line_evidence(line: Settlement) -> dict[str, Any]:
    return {
        "settlement_id": line.settlement_id,
        "txn_id": line.txn_id,
        "status": line.status,
        "gross_minor": line.gross_minor,
        "fee_minor": line.fee_minor,
        "net_minor": line.net_minor,
        "currency": line.currency,
        "batch_id": line.batch_id,
        "settled_at": format_us(line.ts, offset_of(line.settled_at)),
    }
