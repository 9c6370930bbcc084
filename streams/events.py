"""The contract's input events, decoded and validated by msgspec.

Unknown fields are ignored (msgspec's default). ``ts`` is derived after decoding: the event time as
integer microseconds since the epoch, which the rules measure windows with; ``at`` is the engine's
time for the event (steps, merge, watermarks, deadlines), the same unless the partition's clock
says otherwise. The hidden fields' JSON
names start with a DEL character so no ordinary input field can set them. Events hold no
reference cycles, so they are kept out of the cyclic garbage collector (``gc=False``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal, TypeAlias

import msgspec

TxnType: TypeAlias = Literal["SALE", "REFUND", "VOID", "REVERSAL"]
TxnStatus: TypeAlias = Literal["APPROVED", "DECLINED", "TIMEOUT"]
Channel: TypeAlias = Literal["CARD", "QR"]
EntryMode: TypeAlias = Literal["CHIP", "SWIPE", "CONTACTLESS", "KEYED", "QR"]
SettlementStatus: TypeAlias = Literal["SETTLED", "REJECTED"]
OutcomeKind: TypeAlias = Literal["FRAUD_CONFIRMED", "CHARGEBACK", "LEGITIMATE"]

TxnId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
# Three upper-case letters A-Z: the length is checked here, the letters by ``EventDecoder``, once
# per distinct value (a regex here ran per event, and its ``$`` let "USD\n" through).
Currency = Annotated[str, msgspec.Meta(min_length=3, max_length=3)]
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
# Amounts stay integers in minor units; the upper bound keeps them inside a signed 64-bit
# integer for every consumer downstream.
PositiveMinor = Annotated[int, msgspec.Meta(gt=0, le=2**63 - 1)]
NonNegativeMinor = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
SignedMinor = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]

CANCELLING_TYPES: Final = frozenset({"VOID", "REVERSAL"})
SETTLING_TYPES: Final = frozenset({"SALE", "REFUND"})
"""Transaction types that settle (when approved and not cancelled)."""
NEEDS_ORIGINAL: Final = frozenset({"REFUND", "VOID", "REVERSAL"})

# Names no JSON input can carry by accident: these fields are the drivers' and the engine's.
_HIDDEN_TS = "\x7fposguard.ts"
_HIDDEN_AT = "\x7fposguard.at"
_HIDDEN_ORIGIN = "\x7fposguard.origin"


class Transaction(msgspec.Struct, kw_only=True, gc=False):
    """One terminal attempt (topic ``pos.transactions``)."""

    txn_id: TxnId
    merchant_id: Ident
    terminal_id: Ident
    card_token: Ident
    type: TxnType
    status: TxnStatus
    amount_minor: PositiveMinor
    currency: Currency
    channel: Channel
    event_time: Timestamp
    entry_mode: EntryMode | None = None
    original_txn_id: TxnId | None = None
    ts: int = msgspec.field(default=0, name=_HIDDEN_TS)
    at: int = msgspec.field(default=0, name=_HIDDEN_AT)
    """The engine's time for the event: ``ts`` unless the partition's clock holds back a time
    it has not corroborated yet (``streams/engine/clock.py``)."""
    # Where the event came from and its raw bytes, set by the driver while the event is in flight
    # (so a conflict can be dead-lettered with its source); the engine drops it once processed.
    origin: Any = msgspec.field(default=None, name=_HIDDEN_ORIGIN)


class Settlement(msgspec.Struct, kw_only=True, gc=False):
    """One settlement line from the acquirer (topic ``pos.settlements``)."""

    settlement_id: Ident
    txn_id: TxnId
    merchant_id: Ident
    gross_minor: NonNegativeMinor
    fee_minor: NonNegativeMinor
    net_minor: SignedMinor
    currency: Currency
    status: SettlementStatus
    settled_at: Timestamp
    batch_id: Ident | None = None
    ts: int = msgspec.field(default=0, name=_HIDDEN_TS)
    at: int = msgspec.field(default=0, name=_HIDDEN_AT)
    origin: Any = msgspec.field(default=None, name=_HIDDEN_ORIGIN)


class Feedback(msgspec.Struct, kw_only=True, gc=False):
    """An outcome learned after the fact (topic ``pos.feedback``); its event time is
    ``known_at``, so nothing reads it before it was known."""

    feedback_id: Ident
    txn_id: TxnId
    merchant_id: Ident
    kind: OutcomeKind
    known_at: Timestamp
    amount_minor: PositiveMinor | None = None
    currency: Currency | None = None
    source: Ident | None = None
    ts: int = msgspec.field(default=0, name=_HIDDEN_TS)
    at: int = msgspec.field(default=0, name=_HIDDEN_AT)
    origin: Any = msgspec.field(default=None, name=_HIDDEN_ORIGIN)

    @property
    def fraud(self) -> bool:
        """Confirmed fraud or a chargeback: the sale was not the cardholder's."""
        return self.kind != "LEGITIMATE"


class Payout(msgspec.Struct, kw_only=True, gc=False):
    """What reached the merchant's bank account (topic ``pos.payouts``): an acquirer's pay-out
    advice or a bank statement entry, credits positive and debits negative; its event time is
    ``value_date``."""

    payout_id: Ident
    merchant_id: Ident
    amount_minor: SignedMinor
    currency: Currency
    value_date: Timestamp
    batch_ids: Annotated[list[Ident], msgspec.Meta(max_length=1000)] | None = None
    bank_reference: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    ts: int = msgspec.field(default=0, name=_HIDDEN_TS)
    at: int = msgspec.field(default=0, name=_HIDDEN_AT)
    origin: Any = msgspec.field(default=None, name=_HIDDEN_ORIGIN)


Event: TypeAlias = Transaction | Settlement | Feedback | Payout
EventKind: TypeAlias = Literal["transaction", "settlement", "feedback", "payout"]


def event_kind(event: Event) -> EventKind:
    """The input an event belongs to (as dead letters name it)."""
    if isinstance(event, Transaction):
        return "transaction"
    if isinstance(event, Settlement):
        return "settlement"
    return "feedback" if isinstance(event, Feedback) else "payout"
