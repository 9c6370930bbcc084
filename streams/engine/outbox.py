"""What one engine step produced: alert events and rejected inputs, in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from streams.alerts import Alert, AlertStatus, AlertType, alert_id
from streams.config import RuleSettings
from streams.decode import Reason
from streams.events import Event, Transaction
from streams.timefmt import format_us


@dataclass(slots=True)
class Rejection:
    """An event the engine refused (a conflicting redelivery); the driver dead-letters it."""

    event: Event
    reason: Reason
    detail: str
    # The driver's ``event.origin`` (source and raw bytes), kept because the engine clears it on
    # the event once processed.
    origin: Any = None


@dataclass(slots=True)
class Outbox:
    alerts: list[Alert] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    sales: list[Transaction] = field(default_factory=list)
    """Approved sales routed out for card velocity (only when the engine routes them)."""

    def open(
        self,
        kind: AlertType,
        rule: RuleSettings,
        key: tuple[str | int, ...],
        *,
        merchant_id: str,
        terminal_id: str | None,
        txn_ids: list[str],
        settlement_ids: list[str],
        ts: int,
        summary: str,
        details: dict[str, Any],
    ) -> Alert:
        """Raise a new alert whose id is derived from ``key``, and emit it."""
        alert = Alert(
            alert_id=alert_id(kind, *key),
            type=kind,
            severity=rule.severity,
            status="OPEN",
            merchant_id=merchant_id,
            terminal_id=terminal_id,
            txn_ids=txn_ids,
            settlement_ids=settlement_ids,
            event_time=format_us(ts),
            summary=summary,
            details=details,
        )
        self.alerts.append(alert)
        return alert

    def update(
        self,
        alert: Alert,
        ts: int,
        *,
        status: AlertStatus | None = None,
        summary: str | None = None,
        txn_ids: list[str] | None = None,
        settlement_ids: list[str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> Alert:
        """Emit a changed copy of ``alert`` (same id); ``details`` are merged into the old ones."""
        changed = msgspec.structs.replace(
            alert,
            status=status or alert.status,
            summary=summary or alert.summary,
            txn_ids=alert.txn_ids if txn_ids is None else txn_ids,
            settlement_ids=alert.settlement_ids if settlement_ids is None else settlement_ids,
            details=alert.details if details is None else {**alert.details, **details},
            event_time=format_us(ts),
        )
        self.alerts.append(changed)
        return changed

    def resolve(self, alert: Alert, ts: int, summary: str, **details: Any) -> Alert:
        return self.update(alert, ts, status="RESOLVED", summary=summary, details=details)

    def reject(self, event: Event, reason: Reason, detail: str) -> None:
        self.rejections.append(Rejection(event, reason, detail, event.origin))
