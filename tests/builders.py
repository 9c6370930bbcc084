"""Builders for contract events and a one-call engine run, shared by the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec

from streams.alerts import Alert
from streams.config import Config, FeeConfig
from streams.decode import EventDecoder
from streams.engine import Engine
from streams.engine.outbox import Rejection
from streams.events import Event
from streams.money import expected_fee

BASE = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
MIN = 60
HOUR = 3600
_encode = msgspec.json.encode
_txn_decoder = EventDecoder("transaction")
_line_decoder = EventDecoder("settlement")
_feedback_decoder = EventDecoder("feedback")
_payout_decoder = EventDecoder("payout")


def when(seconds: float, offset_hours: int = 0) -> str:
    """RFC 3339 text of BASE + ``seconds``, written in the given UTC offset."""
    moment = BASE + timedelta(seconds=seconds)
    if offset_hours:
        return moment.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()
    return moment.isoformat().replace("+00:00", "Z")


def txn_doc(
    txn_id: str,
    t: float = 0,
    *,
    merchant: str = "M1",
    terminal: str = "T1",
    card: str = "tok_a",
    type: str = "SALE",
    status: str = "APPROVED",
    amount: int = 10_000,
    currency: str = "CNY",
    channel: str = "CARD",
    original: str | None = None,
    entry_mode: str | None = "CHIP",
    offset_hours: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "txn_id": txn_id,
        "merchant_id": merchant,
        "terminal_id": terminal,
        "card_token": card,
        "type": type,
        "status": status,
        "amount_minor": amount,
        "currency": currency,
        "channel": channel,
        "event_time": when(t, offset_hours),
    }
    if entry_mode is not None:
        doc["entry_mode"] = entry_mode
    if original is not None:
        doc["original_txn_id"] = original
    doc.update(extra)
    return doc


def line_doc(
    settlement_id: str,
    txn_id: str,
    t: float,
    *,
    merchant: str = "M1",
    gross: int = 10_000,
    fee: int | None = None,
    net: int | None = None,
    currency: str = "CNY",
    status: str = "SETTLED",
    channel: str = "CARD",
    refund: bool = False,
    offset_hours: int = 0,
    batch: str | None = "B1",
) -> dict[str, Any]:
    if fee is None:
        fee = (
            0 if refund or status == "REJECTED" else expected_fee(gross, FeeConfig().rates[channel])
        )
    if net is None:
        net = 0 if status == "REJECTED" else gross - fee
    doc: dict[str, Any] = {
        "settlement_id": settlement_id,
        "txn_id": txn_id,
        "merchant_id": merchant,
        "gross_minor": gross,
        "fee_minor": fee,
        "net_minor": net,
        "currency": currency,
        "status": status,
        "settled_at": when(t, offset_hours),
    }
    if batch is not None:
        doc["batch_id"] = batch
    return doc


def payout_doc(
    payout_id: str,
    amount: int,
    t: float,
    *,
    merchant: str = "M1",
    currency: str = "CNY",
    batches: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A pay-out credited (debited, when negative) with value date BASE + ``t`` seconds."""
    doc: dict[str, Any] = {
        "payout_id": payout_id,
        "merchant_id": merchant,
        "amount_minor": amount,
        "currency": currency,
        "value_date": when(t),
        **extra,
    }
    if batches is not None:
        doc["batch_ids"] = batches
    return doc


def feedback_doc(
    feedback_id: str,
    txn_id: str,
    t: float,
    *,
    merchant: str = "M1",
    kind: str = "FRAUD_CONFIRMED",
    **extra: Any,
) -> dict[str, Any]:
    """An outcome about ``txn_id``, known at BASE + ``t`` seconds."""
    return {
        "feedback_id": feedback_id,
        "txn_id": txn_id,
        "merchant_id": merchant,
        "kind": kind,
        "known_at": when(t),
        **extra,
    }


def feedback(feedback_id: str, txn_id: str, t: float, **kw: Any) -> Event:
    return _feedback_decoder.decode(_encode(feedback_doc(feedback_id, txn_id, t, **kw)))


def payout(payout_id: str, amount: int, t: float, **kw: Any) -> Event:
    return _payout_decoder.decode(_encode(payout_doc(payout_id, amount, t, **kw)))


def txn(txn_id: str, t: float = 0, **kw: Any) -> Event:
    return _txn_decoder.decode(_encode(txn_doc(txn_id, t, **kw)))


def line(settlement_id: str, txn_id: str, t: float, **kw: Any) -> Event:
    return _line_decoder.decode(_encode(line_doc(settlement_id, txn_id, t, **kw)))


class Run:
    """The alert events and rejections of one engine run, with helpers to query them."""

    def __init__(self, alerts: list[Alert], rejections: list[Rejection], engine: Engine) -> None:
        self.events = alerts
        self.rejections = rejections
        self.engine = engine

    def final(self, kind: str | None = None) -> list[Alert]:
        """The last state of each alert (optionally of one type), in first-raised order."""
        last: dict[str, Alert] = {}
        for alert in self.events:
            last[alert.alert_id] = alert
        return [a for a in last.values() if kind is None or a.type == kind]

    def types(self) -> list[str]:
        return sorted({a.type for a in self.events})

    def one(self, kind: str) -> Alert:
        found = self.final(kind)
        assert len(found) == 1, f"expected one {kind}, got {found}"
        return found[0]


def run(*events: Event, config: Config | None = None) -> Run:
    engine = Engine(config)
    for event in events:
        engine.submit(event)
    engine.flush()
    alerts, rejections = engine.take()
    return Run(alerts, rejections, engine)
