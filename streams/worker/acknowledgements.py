"""Operators' acknowledgements: kept in a changelog-backed table in the partition of the alert
(so they survive a restart and follow the partition on a rebalance), applied to the worker's
alert view and published as an update of the alert."""

from __future__ import annotations

from typing import Any

import msgspec

from streams.alerts import encode_acknowledged, now_rfc3339
from streams.cardmask import mask_text
from streams.worker.acting import acting_for
from streams.worker.alertstore import AlertStore, to_json


class Acknowledgements:
    def __init__(self, table: Any, store: AlertStore, alerts_topic: Any) -> None:
        self.table = table
        self.store = store
        self.alerts_topic = alerts_topic

    def acknowledge(self, alert_id: str, by: str, note: str) -> dict[str, Any] | None:
        """Acknowledge one alert; its API view, or None for an alert the worker does not hold.
        Who and the note are masked (an operator may paste a card number) and cut to size."""
        stored = self.store.get(alert_id)
        if stored is None:
            return None
        ack = {"by": mask_text(by.strip())[:80], "at": now_rfc3339(), "note": mask_text(note)[:500]}
        key, value = alert_id.encode(), msgspec.json.encode(ack)
        with acting_for(stored.partition):
            self.table.data[key] = value
        self.table.send_changelog(stored.partition, key, value)
        self.store.acknowledge(alert_id, ack)
        self.alerts_topic.send_soon(
            key=key, value=encode_acknowledged(stored.alert, stored.detected_at, ack)
        )
        return to_json(stored)

    def restore(self, p: int) -> None:
        """Apply the table's acknowledgements of partition ``p``'s alerts to the alert view (the
        partition's alerts were just restored)."""
        for key, value in list(self.table.data.items()):
            stored = self.store.get(key.decode())
            if stored is not None and stored.partition == p:
                self.store.acknowledge(stored.alert.alert_id, msgspec.json.decode(value))
