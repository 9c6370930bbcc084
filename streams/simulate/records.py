"""Mutable records the simulator builds before rendering them as contract JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from streams.simulate.fleet import Merchant
from streams.timefmt import format_us

SettleMode: TypeAlias = Literal[
    "normal",  # one SETTLED line in the T+1 batch
    "none",  # no line (declined, timed out, cancelled, or a void itself)
    "drop",  # the acquirer never sends the line
    "reject",  # a REJECTED line
    "late",  # the line comes in the last batch of the run
    "duplicate",  # two SETTLED lines with distinct ids
    "gross_off",
    "fee_off",
    "net_off",
    "force",  # a SETTLED line although the attempt must not settle
]


@dataclass(slots=True)
class SimTxn:
    txn_id: str
    merchant: Merchant
    terminal_id: str
    card_token: str
    type: str
    status: str
    amount_minor: int
    channel: str
    entry_mode: str | None
    ts: int
    original_txn_id: str | None = None
    settle: SettleMode = "none"
    redeliver: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # fields outside the contract
    clock_offset: int = 0
    """How far the terminal's clock is off: written into ``event_time``; ``ts`` stays the true
    moment, which decides when the sale is sent and settled."""

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "txn_id": self.txn_id,
            "merchant_id": self.merchant.merchant_id,
            "terminal_id": self.terminal_id,
            "card_token": self.card_token,
            "type": self.type,
            "status": self.status,
            "amount_minor": self.amount_minor,
            "currency": self.merchant.currency,
            "channel": self.channel,
        }
        if self.entry_mode is not None:
            doc["entry_mode"] = self.entry_mode
        if self.original_txn_id is not None:
            doc["original_txn_id"] = self.original_txn_id
        doc["event_time"] = format_us(
            self.ts + self.clock_offset, self.merchant.region.offset_seconds
        )
        doc.update(self.extra)
        return doc


@dataclass(slots=True)
class SimLine:
    settlement_id: str
    txn_id: str
    merchant_id: str
    gross_minor: int
    fee_minor: int
    net_minor: int
    currency: str
    status: str
    batch_id: str
    ts: int
    offset_seconds: int
    redeliver: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "settlement_id": self.settlement_id,
            "txn_id": self.txn_id,
            "merchant_id": self.merchant_id,
            "gross_minor": self.gross_minor,
            "fee_minor": self.fee_minor,
            "net_minor": self.net_minor,
            "currency": self.currency,
            "status": self.status,
            "batch_id": self.batch_id,
            "settled_at": format_us(self.ts, self.offset_seconds),
        }
