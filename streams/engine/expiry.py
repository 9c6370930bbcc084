"""The retention queue: evidence in arrival order, dropped once older than the retention horizon.

Each entry is a retained transaction's state or a settlement line itself (8 bytes an entry, where
a tuple of its time, merchant and id took 120), which says its own time, merchant and id.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from streams.engine.state import MerchantState, TxnState, awaits_settlement
from streams.events import Settlement


def retained_at(entry: TxnState | Settlement) -> int:
    if type(entry) is TxnState:
        return entry.txn.at
    return entry.ts  # type: ignore[union-attr]


@dataclass(slots=True)
class Expiry:
    entries: deque[TxnState | Settlement] = field(default_factory=deque)

    def drop_before(self, horizon: int, merchants: dict[str, MerchantState]) -> None:
        """Drop evidence older than ``horizon`` from the queue and the merchants' ledgers."""
        entries = self.entries
        while entries:
            entry = entries[0]
            if type(entry) is TxnState:
                t = entry.txn
                if t.at >= horizon:
                    return
                entries.popleft()
                key = t.txn_id
                ms = merchants[t.merchant_id]
                if ms.txns.get(key) is entry:
                    del ms.txns[key]
                    if awaits_settlement(entry):
                        ms.count_unsettled(t, -1)
                ms.refund_excess.pop(key, None)
                ms.pending_cancels.pop(key, None)
                if t.original_txn_id is not None:
                    ms.pending_cancels.pop(t.original_txn_id, None)
                continue
            line: Settlement = entry  # type: ignore[assignment]
            if line.ts >= horizon:
                return
            entries.popleft()
            key = line.settlement_id
            ms = merchants[line.merchant_id]
            if ms.settlements.get(key) is line:
                del ms.settlements[key]
            ms.unmatched.pop(key, None)
            lines = ms.lines.get(line.txn_id)
            if lines is not None:
                kept = tuple(x for x in lines if x.settlement_id != key)
                if kept:
                    ms.lines[line.txn_id] = kept
                else:
                    del ms.lines[line.txn_id]
                    ms.duplicate_settlements.pop(line.txn_id, None)
