"""The evidence behind an alert, from the engine's state, for the dashboard's detail view.

Times are shown as the source wrote them (a terminal's ``event_time`` carries its own offset),
amounts in major units with their currency, and each settlement line with the fee the merchant's
contract expects for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streams.alerts import Alert
from streams.cardmask import mask_text
from streams.config import Config
from streams.engine import Engine
from streams.money import expected_fee, format_amount


def _iso(moment: Any) -> str:
    return str(moment.isoformat()).replace("+00:00", "Z")


def alert_evidence(alert: Alert, engines: Iterable[Engine], config: Config) -> dict[str, Any]:
    txns: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    wanted_txns = set(alert.txn_ids)
    wanted_lines = set(alert.settlement_ids)
    for engine in engines:
        ms = engine.merchants.get(alert.merchant_id)
        if ms is None:
            continue
        channels: dict[str, str] = {}
        for txn_id in alert.txn_ids:
            st = ms.txns.get(txn_id)
            if st is None or txn_id not in wanted_txns:
                continue
            wanted_txns.discard(txn_id)
            t = st.txn
            channels[txn_id] = t.channel
            txns.append(
                {
                    "txn_id": t.txn_id,
                    "type": t.type,
                    "status": t.status,
                    "terminal_id": t.terminal_id,
                    "card_token": mask_text(t.card_token),
                    "amount": format_amount(t.amount_minor, t.currency),
                    "amount_minor": t.amount_minor,
                    "currency": t.currency,
                    "channel": t.channel,
                    "entry_mode": t.entry_mode,
                    "original_txn_id": t.original_txn_id,
                    "event_time": _iso(t.event_time),
                    "cancelled_by": st.cancelled_by,
                }
            )
        ids = list(alert.settlement_ids) + [
            sid for txn_id in alert.txn_ids for sid in _line_ids(ms, txn_id)
        ]
        for sid in dict.fromkeys(ids):
            line = ms.settlements.get(sid)
            if line is None:
                continue
            wanted_lines.discard(sid)
            txn = ms.txns.get(line.txn_id)
            channel = channels.get(line.txn_id) or (txn.txn.channel if txn else None)
            refund = txn is not None and txn.txn.type == "REFUND"
            fee = None
            if channel is not None:
                rate = config.fees.rate(line.merchant_id, channel)
                fee = 0 if refund else expected_fee(line.gross_minor, rate)
            lines.append(
                {
                    "settlement_id": line.settlement_id,
                    "txn_id": line.txn_id,
                    "status": line.status,
                    "gross": format_amount(line.gross_minor, line.currency),
                    "fee": format_amount(line.fee_minor, line.currency),
                    "expected_fee": None if fee is None else format_amount(fee, line.currency),
                    "net": format_amount(line.net_minor, line.currency),
                    "batch_id": line.batch_id,
                    "settled_at": _iso(line.settled_at),
                }
            )
    return {
        "transactions": txns,
        "settlements": lines,
        "not_in_state": sorted(wanted_txns | wanted_lines),
    }


def _line_ids(ms: Any, txn_id: str) -> list[str]:
    return [line.settlement_id for line in ms.lines.get(txn_id, [])]
