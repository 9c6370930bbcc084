"""Alerts: the contract's alert event, its types, and stable ids."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeAlias

import msgspec

from streams.rules.registry import PREFIXES

AlertType: TypeAlias = str
"""One of ``streams.rules.registry.ALERT_TYPES``."""
AlertStatus: TypeAlias = Literal["OPEN", "RESOLVED"]
FLEET: Final = "*"
"""``merchant_id`` of alerts about the whole feed rather than one merchant."""


def alert_id(kind: AlertType, *evidence: str | int) -> str:
    """A stable id from the alert type and the evidence that identifies it.

    The same evidence gives the same id in every process, replay and restart (no salted hashing).
    The id starts with the type's prefix from the registry.
    """
    text = "\x1f".join([kind, *(str(part) for part in evidence)])
    return f"{PREFIXES[kind]}-{hashlib.blake2b(text.encode(), digest_size=10).hexdigest()}"


class Alert(msgspec.Struct, kw_only=True):
    """One alert event. Alerts are never mutated: an update is a new ``Alert`` with the same id."""

    alert_id: str
    type: AlertType
    severity: str
    status: AlertStatus
    merchant_id: str
    terminal_id: str | None
    txn_ids: list[str]
    settlement_ids: list[str]
    event_time: str
    detected_at: str = ""
    summary: str
    details: dict[str, Any]


_encoder = msgspec.json.Encoder()


def encode_with_case(alert: Alert, detected_at: str, case_fields: dict[str, Any]) -> bytes:
    """An alert update carrying its case (``case_fields``: the contract's ``case`` object, and
    ``acknowledgement`` for consumers from before cases); ``status`` stays the system's own
    judgment. Consumers that upsert by ``alert_id`` keep working."""
    doc = msgspec.to_builtins(msgspec.structs.replace(alert, detected_at=detected_at))
    doc.update(case_fields)
    return _encoder.encode(doc)


def now_rfc3339() -> str:
    """The wall clock, for ``detected_at`` stamps only: detection never reads it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_alert(alert: Alert, detected_at: str) -> bytes:
    """JSON bytes of an alert stamped with the wall-clock ``detected_at``.

    Nothing is masked: accepted ids are evidence and are echoed byte for byte. An input with a
    card number in ``card_token`` or (as configured) in an id never gets this far.
    """
    return _encoder.encode(msgspec.structs.replace(alert, detected_at=detected_at))
