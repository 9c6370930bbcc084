"""The worker's own view of its alerts: the latest state of each, its history, and queries.

Fed with every alert event the worker publishes or rebuilds from its journal, so ``/api/alerts``
is served from the worker's state, never from re-reading the alerts topic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from streams.alerts import Alert
from streams.cases import DEFAULT_SLA_S, Case, case_fields
from streams.money import format_amount
from streams.stake import money_at_stake
from streams.timefmt import to_us

_PRUNE_EVERY: Final = 10_000


@dataclass(slots=True)
class StoredAlert:
    alert: Alert
    ts: int
    """Event time of the latest update, in microseconds."""
    detected_at: str
    history: list[dict[str, str]] = field(default_factory=list)
    partition: int = 0
    """Input partition whose engine raised it (its case is kept in that partition)."""
    case: Case | None = None

    def case_state(self, now: datetime) -> str:
        return "NEW" if self.case is None else self.case.effective_state(now)

    def overdue(self, sla_s: Mapping[str, int], now: datetime) -> bool:
        """Past its SLA, still waiting for an operator, and still open in the system's view."""
        return (
            self.case is not None
            and self.alert.status == "OPEN"
            and self.case.overdue(self.alert.severity, sla_s, now)
        )


@dataclass(frozen=True, slots=True)
class AlertQuery:
    status: str | None = None
    type: str | None = None
    severity: str | None = None
    merchant_id: str | None = None
    terminal_id: str | None = None
    text: str | None = None
    """Case-insensitive substring of the alert id, a transaction id or a settlement id."""
    case_state: str | None = None
    owner: str | None = None
    overdue: bool = False
    limit: int = 50
    offset: int = 0


class AlertStore:
    """Latest alert per id. Resolved alerts older than ``keep_us`` of event time are dropped."""

    def __init__(self, keep_us: int, sla_s: Mapping[str, int] = DEFAULT_SLA_S) -> None:
        self.sla_s = sla_s
        self.pruned: list[StoredAlert] = []
        """Dropped alerts that had a case, for the case table to forget (``Casebook``)."""
        self._alerts: dict[str, StoredAlert] = {}
        self._keep_us = keep_us
        self._newest = -(2**63)
        self._updates = 0

    def apply(self, alert: Alert, detected_at: str, partition: int = 0) -> None:
        ts = to_us(datetime.fromisoformat(alert.event_time))
        entry = {"status": alert.status, "event_time": alert.event_time, "summary": alert.summary}
        known = self._alerts.get(alert.alert_id)
        if known is None:
            self._alerts[alert.alert_id] = StoredAlert(alert, ts, detected_at, [entry], partition)
        else:
            known.alert, known.ts, known.detected_at = alert, ts, detected_at
            if known.history[-1] != entry:
                known.history.append(entry)
        self._newest = max(self._newest, ts)
        self._updates += 1
        if not self._updates % _PRUNE_EVERY:
            self._prune()

    def stats(self) -> dict[str, Any]:
        """Counts per type (open / all) and alerts opened per event-time hour, per type."""
        per_type: Counter[str] = Counter()
        open_per_type: Counter[str] = Counter()
        hourly: dict[str, Counter[int]] = {}
        for s in self._alerts.values():
            kind = s.alert.type
            per_type[kind] += 1
            if s.alert.status == "OPEN":
                open_per_type[kind] += 1
            first = s.history[0].get("event_time") if s.history else None
            opened = to_us(datetime.fromisoformat(first)) if first else s.ts
            hourly.setdefault(kind, Counter())[opened // 3_600_000_000 * 3600] += 1
        return {
            "total": dict(per_type),
            "open": dict(open_per_type),
            "opened_per_hour": {k: sorted(v.items()) for k, v in hourly.items()},
        }

    def get(self, alert_id: str) -> StoredAlert | None:
        return self._alerts.get(alert_id)

    def __len__(self) -> int:
        return len(self._alerts)

    def open_alerts(self) -> list[Alert]:
        return [s.alert for s in self._alerts.values() if s.alert.status == "OPEN"]

    def open_by_type(self) -> Counter[tuple[str, str]]:
        """Open alerts counted by ``(type, severity)``."""
        return Counter((a.type, a.severity) for a in self.open_alerts())

    def query(self, q: AlertQuery, now: datetime | None = None) -> tuple[int, list[StoredAlert]]:
        """``(total matching, one page)``, newest event time first."""
        found = self.matching(q, now)
        found.sort(key=lambda s: (s.ts, s.alert.alert_id), reverse=True)
        return len(found), found[q.offset : q.offset + q.limit]

    def matching(self, q: AlertQuery, now: datetime | None = None) -> list[StoredAlert]:
        """Every alert the query's filters match (unsorted, not paged)."""
        text = q.text.lower() if q.text else None
        now = now or datetime.now(UTC)
        return [
            s
            for s in self._alerts.values()
            if (q.status is None or s.alert.status == q.status)
            and (q.type is None or s.alert.type == q.type)
            and (q.severity is None or s.alert.severity == q.severity)
            and (q.merchant_id is None or s.alert.merchant_id == q.merchant_id)
            and (q.terminal_id is None or s.alert.terminal_id == q.terminal_id)
            and (text is None or _mentions(s.alert, text))
            and (q.case_state is None or s.case_state(now) == q.case_state)
            and (q.owner is None or (s.case is not None and s.case.owner == q.owner))
            and (not q.overdue or s.overdue(self.sla_s, now))
        ]

    def cases(self) -> list[StoredAlert]:
        return list(self._alerts.values())

    def _prune(self) -> None:
        """Drop resolved alerts past retention, unless an operator is working their case."""
        horizon = self._newest - self._keep_us
        for key in [
            k
            for k, s in self._alerts.items()
            if s.alert.status == "RESOLVED"
            and s.ts < horizon
            and (s.case is None or s.case.state in ("NEW", "CLOSED"))
        ]:
            dropped = self._alerts.pop(key)
            if dropped.case is not None:
                self.pruned.append(dropped)


def _mentions(alert: Alert, text: str) -> bool:
    return (
        text in alert.alert_id.lower()
        or any(text in t.lower() for t in alert.txn_ids)
        or any(text in s.lower() for s in alert.settlement_ids)
    )


def to_json(
    stored: StoredAlert, sla_s: Mapping[str, int] = DEFAULT_SLA_S, now: datetime | None = None
) -> dict[str, Any]:
    """The contract's alert fields plus its history, case and money at stake."""
    data: dict[str, Any] = msgspec.to_builtins(stored.alert)
    data["detected_at"] = stored.detected_at
    data["history"] = stored.history
    data.update(case_fields(stored.case, stored.alert.severity, sla_s, now or datetime.now(UTC)))
    stake = money_at_stake(stored.alert)
    data["at_stake"] = (
        None
        if stake is None
        else {
            "minor": stake.minor,
            "currency": stake.currency,
            "amount": format_amount(stake.minor, stake.currency),
            "why": stake.why,
        }
    )
    return data
