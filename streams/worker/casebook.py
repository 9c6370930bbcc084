"""Operators' cases: kept in a changelog-backed table in the partition of the alert (so they
survive a restart and follow the partition on a rebalance), applied to the worker's alert view
and published on the alerts topic as an update of the alert.

Closing a ``SUSPICIOUS_PATTERN`` or ``VELOCITY`` case as confirmed or as a false positive is an
outcome the model can learn from: it goes to the feedback topic (source ``OPERATOR``), one
outcome per sale of the alert, keyed by the sale's merchant so it reaches the sale's partition.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from streams.alerts import Alert, encode_with_case, now_rfc3339
from streams.cases import (
    Case,
    CaseAction,
    CaseError,
    apply,
    case_fields,
    decode_history,
    fold,
)
from streams.worker.acting import acting_for
from streams.worker.alertstore import AlertStore, StoredAlert, to_json

log = logging.getLogger("posguard.worker")

LEARNT_FROM: Final = ("SUSPICIOUS_PATTERN", "VELOCITY")
"""Alert types whose verdicts are outcomes of sales (the others are about money, not fraud)."""
_OUTCOME_OF: Final = {"CONFIRMED": "FRAUD_CONFIRMED", "FALSE_POSITIVE": "LEGITIMATE"}
MAX_BULK: Final = 10_000
"""Most cases one bulk action changes (a filter that matches more is refused, not cut)."""


class Kept(msgspec.Struct):
    """A case table value: the alert as last published, and its case's history."""

    alert: Alert
    detected_at: str
    partition: int
    history: list[CaseAction]


_encoder = msgspec.json.Encoder()
_kept_decoder = msgspec.json.Decoder(Kept)


def _decode(value: bytes) -> tuple[Kept | None, Case]:
    """A table value: ``Kept``, or (written by earlier versions) a bare history or an
    acknowledgement, which carry no alert."""
    if value[:1] == b"{" and b'"history"' in value:
        kept = _kept_decoder.decode(value)
        return kept, fold(kept.history)
    return None, decode_history(value)


class _Where(msgspec.Struct):
    partition: int


_where_decoder = msgspec.json.Decoder(_Where)


def _partition_of(value: bytes) -> int | None:
    """The partition a table value belongs to, without decoding the rest; None for a value
    written before alerts were kept with their cases."""
    if value[:1] == b"{" and b'"history"' in value:
        return _where_decoder.decode(value).partition
    return None


class Casebook:
    def __init__(
        self,
        table: Any,
        store: AlertStore,
        alerts_topic: Any,
        feedback_topic: Any,
        sla_s: Mapping[str, int],
    ) -> None:
        self.table = table
        self.store = store
        self.alerts_topic = alerts_topic
        self.feedback_topic = feedback_topic
        self.sla_s = sla_s

    def act(self, alert_id: str, action: CaseAction) -> dict[str, Any] | None:
        """Apply one operator's action; the alert's API view, or None for an alert the worker
        does not hold. ``CaseError`` when the action does not fit the case."""
        stored = self.store.get(alert_id)
        if stored is None:
            return None
        case = apply(stored.case or Case(opened_at=stored.detected_at), action)
        self._keep(stored, case)
        now = datetime.now(UTC)
        self.alerts_topic.send_soon(
            key=alert_id.encode(),
            value=encode_with_case(
                stored.alert,
                stored.detected_at,
                case_fields(case, stored.alert.severity, self.sla_s, now),
            ),
        )
        if action.action == "close":
            self._send_outcomes(stored.alert, case, action)
        return to_json(stored, self.sla_s, now)

    def act_on_many(self, alert_ids: Iterable[str], action: CaseAction) -> dict[str, Any]:
        """The same action on each alert: how many changed, and why the others did not."""
        done, refused = 0, {}
        for alert_id in alert_ids:
            try:
                if self.act(alert_id, action) is not None:
                    done += 1
            except CaseError as exc:
                refused[alert_id] = str(exc)
        return {"changed": done, "refused": refused}

    def record(self, alert: Alert, is_new: bool) -> None:
        """An alert just published: a new one's case starts now (the SLA counts from here);
        every one is kept with its case, so a worker that takes the partition over from a
        snapshot (whose journal no longer holds the alert) still shows it and its case."""
        stored = self.store.get(alert.alert_id)
        if stored is None:
            return
        if stored.case is None:
            kept = self.table.data.get(alert.alert_id.encode())
            if kept is not None:  # published again by a rebuild: the case is older than this run
                stored.case = _decode(kept)[1]
            elif is_new:
                start = CaseAction("open", "posguard", stored.detected_at or now_rfc3339())
                stored.case = apply(Case(), start)
        if stored.case is not None:
            self._keep(stored, stored.case)

    def restore(self, p: int) -> None:
        """Apply the table's cases of partition ``p`` to the alert view (the partition was just
        rebuilt); an alert the rebuild did not make again (it lies before the snapshot) comes
        back from the table as it was last published."""
        for key, value in list(self.table.data.items()):
            stored = self.store.get(key.decode())
            if stored is not None and stored.partition != p:
                continue  # another partition's (only the partition is read of the others)
            try:
                if stored is None and _partition_of(value) not in (p, None):
                    continue
                kept, case = _decode(value)
            except (msgspec.DecodeError, msgspec.ValidationError, CaseError, KeyError) as exc:
                log.warning("case of %r cannot be read (%s): kept as new", key, exc)
                continue
            if stored is None and kept is not None and kept.partition == p:
                self.store.apply(kept.alert, kept.detected_at, p)
                stored = self.store.get(key.decode())
            if stored is not None and stored.partition == p:
                stored.case = case

    def forget_pruned(self) -> None:
        """Delete the cases of alerts the alert view dropped (resolved, past retention)."""
        pruned, self.store.pruned = self.store.pruned, []
        for stored in pruned:
            key = stored.alert.alert_id.encode()
            with acting_for(stored.partition):
                self.table.data.pop(key, None)
            self.table.send_changelog(stored.partition, key, None, value_serializer="raw")

    def _keep(self, stored: StoredAlert, case: Case) -> None:
        key = stored.alert.alert_id.encode()
        value = _encoder.encode(
            Kept(stored.alert, stored.detected_at, stored.partition, list(case.history))
        )
        with acting_for(stored.partition):
            self.table.data[key] = value
        self.table.send_changelog(stored.partition, key, value)
        stored.case = case

    def _send_outcomes(self, alert: Alert, case: Case, close: CaseAction) -> None:
        kind = _OUTCOME_OF.get(close.disposition or "")
        if alert.type not in LEARNT_FROM or kind is None:
            return
        closes = sum(1 for a in case.history if a.action == "close")
        merchants: dict[str, str] = alert.details.get("txn_merchants") or {}
        for txn_id in alert.txn_ids:
            merchant = merchants.get(txn_id, alert.merchant_id)
            outcome = {
                "feedback_id": f"case:{alert.alert_id}:{txn_id}:{closes}",
                "txn_id": txn_id,
                "merchant_id": merchant,
                "kind": kind,
                "known_at": close.at,
                "source": "OPERATOR",
            }
            self.feedback_topic.send_soon(key=merchant.encode(), value=msgspec.json.encode(outcome))
