"""Raw bytes to validated events, or a precise reason why not.

Both drivers use this: the file driver per JSON line, the stream driver per Kafka message value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, tzinfo
from typing import Final, Literal, TypeAlias, cast

import msgspec

from streams.cardmask import SHORTEST_CARD_NUMBER, IdCheck, id_has_card_number, is_card_number
from streams.events import (
    NEEDS_ORIGINAL,
    Event,
    EventKind,
    Feedback,
    Payout,
    Settlement,
    Transaction,
)
from streams.timefmt import to_us

Reason: TypeAlias = Literal[
    "INVALID_JSON", "SCHEMA_VIOLATION", "CARD_NUMBER", "CONFLICT", "NOT_UTF8"
]
REASONS: Final[tuple[Reason, ...]] = (
    "INVALID_JSON",
    "SCHEMA_VIOLATION",
    "CARD_NUMBER",
    "CONFLICT",
    "NOT_UTF8",
)


class BadInputError(Exception):
    """An input that must go to the dead letters, with a bounded reason code and a detail text."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail


_MAX_SHARED_NAMES: Final = 200_000


class EventDecoder:
    """Decodes one kind of event; reuse one instance (msgspec decoders are cached state).

    Merchant, terminal and batch ids repeat on every event; one shared string per distinct value
    (up to a bound) keeps a month of retained evidence a sixth smaller, and an id already shared
    has been checked for card numbers.
    """

    def __init__(self, kind: EventKind, id_check: IdCheck = "networks") -> None:
        self.kind: EventKind = kind
        self.id_check: IdCheck = id_check
        self._names: dict[str, str] = {}
        # Per tzinfo (msgspec shares one per offset), microseconds to add to the wall-clock
        # fields to get UTC: a timestamp from the fields costs half of ``datetime.timestamp()``.
        self._offsets: dict[tzinfo | None, int] = {}
        # Currency codes already found to be three letters A-Z (at most 26**3 of them).
        self._currencies: set[str] = set()
        # The last settlement line's ``settled_at`` (same offset) and its time (settlements only).
        self._last_moment: datetime | None = None
        self._last_ts = 0
        self._transactions = kind == "transaction"
        # The bound method, looked up once: a method call by name costs a lookup per event.
        self._feedback = kind == "feedback"
        self._payout = kind == "payout"
        decoder: (
            msgspec.json.Decoder[Transaction]
            | msgspec.json.Decoder[Settlement]
            | msgspec.json.Decoder[Feedback]
            | msgspec.json.Decoder[Payout]
        )
        if kind == "transaction":
            decoder = msgspec.json.Decoder(Transaction)
        elif kind == "settlement":
            decoder = msgspec.json.Decoder(Settlement)
        elif kind == "payout":
            decoder = msgspec.json.Decoder(Payout)
        else:
            decoder = msgspec.json.Decoder(Feedback)
        self._decode: Callable[[bytes], Event] = decoder.decode

    def decode(self, raw: bytes) -> Event:
        try:
            event = self._decode(raw)
        except msgspec.ValidationError as exc:
            raise BadInputError("SCHEMA_VIOLATION", str(exc)) from None
        except UnicodeDecodeError:
            raise BadInputError("NOT_UTF8", "the message is not UTF-8 text") from None
        except msgspec.DecodeError as exc:
            raise BadInputError("INVALID_JSON", str(exc)) from None
        if self._feedback:
            return self._outcome(cast(Feedback, event))
        if self._payout:
            return self._paid(cast(Payout, event))
        event = cast(Transaction | Settlement, event)
        currency = event.currency
        if currency not in self._currencies:
            _check_currency(currency)
            self._currencies.add(currency)
        names = self._names
        check = self.id_check
        # Each field is read once: a read of an event's field is a lookup by name.
        merchant_id = event.merchant_id
        if self._transactions:
            t = cast(Transaction, event)
            if is_card_number(t.card_token):
                raise BadInputError(
                    "CARD_NUMBER", "card_token is a card number (13-19 digits passing Luhn)"
                )
            terminal_id = t.terminal_id
            original = t.original_txn_id
            if check != "off":  # a card number has 13 digits or more: shorter ids pass as they are
                txn_id = t.txn_id
                if len(txn_id) >= SHORTEST_CARD_NUMBER:
                    _check_id(check, "txn_id", txn_id)
                if original is not None and len(original) >= SHORTEST_CARD_NUMBER:
                    _check_id(check, "original_txn_id", original)
                if len(terminal_id) >= SHORTEST_CARD_NUMBER and terminal_id not in names:
                    _check_id(check, "terminal_id", terminal_id)
                if len(merchant_id) >= SHORTEST_CARD_NUMBER and merchant_id not in names:
                    _check_id(check, "merchant_id", merchant_id)
            if original is None and t.type in NEEDS_ORIGINAL:
                raise BadInputError(
                    "SCHEMA_VIOLATION",
                    f"Object missing required field `original_txn_id` (required for {t.type})",
                )
            moment = t.event_time
            if len(names) < _MAX_SHARED_NAMES:
                t.terminal_id = names.setdefault(terminal_id, terminal_id)
        else:
            line = cast(Settlement, event)
            if check != "off":
                settlement_id = line.settlement_id
                if len(settlement_id) >= SHORTEST_CARD_NUMBER:
                    _check_id(check, "settlement_id", settlement_id)
                txn_id = line.txn_id
                if len(txn_id) >= SHORTEST_CARD_NUMBER:
                    _check_id(check, "txn_id", txn_id)
                if len(merchant_id) >= SHORTEST_CARD_NUMBER and merchant_id not in names:
                    _check_id(check, "merchant_id", merchant_id)
            batch = line.batch_id  # shared by a batch's lines: judged once and shared, like names
            if batch is not None:
                shared = names.get(batch)
                if shared is not None:
                    line.batch_id = shared
                else:
                    if check != "off" and len(batch) >= SHORTEST_CARD_NUMBER:
                        _check_id(check, "batch_id", batch)
                    if len(names) < _MAX_SHARED_NAMES:
                        names[batch] = batch
            moment = line.settled_at
        if len(names) < _MAX_SHARED_NAMES:
            event.merchant_id = names.setdefault(merchant_id, merchant_id)
        last = self._last_moment
        if last is not None and moment.tzinfo is last.tzinfo and moment == last:
            # A settlement batch's lines share one ``settled_at``: one datetime and one time for
            # all of them, not one each (80 bytes a line, kept for a month).
            cast(Settlement, event).settled_at = last
            event.ts = event.at = self._last_ts
            return event
        # Microseconds since the epoch, exactly to_us(moment) at half the cost of timestamp().
        offset = self._offsets.get(moment.tzinfo)
        if offset is None:
            offset = self._offsets[moment.tzinfo] = to_us(moment) - _naive_us(moment)
        days = moment.toordinal() - _EPOCH_ORDINAL
        seconds = ((days * 24 + moment.hour) * 60 + moment.minute) * 60 + moment.second
        ts = event.ts = event.at = seconds * 1_000_000 + moment.microsecond + offset
        if not self._transactions:
            self._last_moment = moment
            self._last_ts = ts
        return event

    def _outcome(self, f: Feedback) -> Feedback:
        """The checks of a feedback event; outcomes are few, so no sharing of names here."""
        if f.amount_minor is not None and f.currency is None:
            raise BadInputError(
                "SCHEMA_VIOLATION", "Object missing required field `currency` (with amount_minor)"
            )
        if f.currency is not None:
            _check_currency(f.currency)
        check = self.id_check
        if check != "off":
            for name, value in (
                ("feedback_id", f.feedback_id),
                ("txn_id", f.txn_id),
                ("merchant_id", f.merchant_id),
                ("source", f.source),
            ):
                if value is not None and len(value) >= SHORTEST_CARD_NUMBER:
                    _check_id(check, name, value)
        f.ts = f.at = to_us(f.known_at)
        return f

    def _paid(self, p: Payout) -> Payout:
        """The checks of a pay-out: a few a day per merchant, so no sharing of names here."""
        _check_currency(p.currency)
        check = self.id_check
        if check != "off":
            named: list[tuple[str, str | None]] = [
                ("payout_id", p.payout_id),
                ("merchant_id", p.merchant_id),
                ("bank_reference", p.bank_reference),
            ]
            named.extend(("batch_ids", b) for b in p.batch_ids or ())
            for name, value in named:
                if value is not None and len(value) >= SHORTEST_CARD_NUMBER:
                    _check_id(check, name, value)
        if p.batch_ids is not None and len(set(p.batch_ids)) != len(p.batch_ids):
            raise BadInputError("SCHEMA_VIOLATION", "batch_ids names a batch twice")
        p.ts = p.at = to_us(p.value_date)
        return p


def _check_currency(currency: str) -> None:
    if not (currency.isascii() and currency.isalpha() and currency.isupper()):
        raise BadInputError(
            "SCHEMA_VIOLATION",
            "Expected `str` of three upper-case letters A-Z (ISO 4217) - at `$.currency`",
        )


def _check_id(check: IdCheck, name: str, value: str) -> None:
    """Refuse the event when the id ``name`` carries a card number: an id is echoed exactly or
    not at all. (Merchant and terminal ids already shared passed before.)"""
    if id_has_card_number(value, check):
        how = (
            "passing Luhn, in a card network's IIN range" if check == "networks" else "passing Luhn"
        )
        raise BadInputError("CARD_NUMBER", f"{name} carries a card number (13-19 digits {how})")


_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


def _naive_us(moment: datetime) -> int:
    """The wall-clock fields of ``moment`` as microseconds since the epoch, ignoring its offset."""
    days = moment.toordinal() - _EPOCH_ORDINAL
    seconds = ((days * 24 + moment.hour) * 60 + moment.minute) * 60 + moment.second
    return seconds * 1_000_000 + moment.microsecond


def contract_bytes(event: Event) -> bytes:
    """The event's contract fields as JSON (fields outside the contract dropped), which decode
    to the same event."""
    return msgspec.json.encode(msgspec.structs.replace(event, ts=0, at=0, origin=None))
