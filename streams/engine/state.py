"""The engine's state, partitioned by merchant like the input topics.

Everything a merchant's rules need lives in its ``MerchantState``; card velocity (keyed by card)
and the feed watermarks (one feed) live beside it in their own components.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from streams.alerts import Alert
from streams.engine.records import DuplicateCluster, TerminalWindow, TxnState
from streams.events import SETTLING_TYPES, Settlement, Transaction

__all__ = ["DuplicateCluster", "MerchantState", "TerminalWindow", "TxnState"]

SWEEP_EVERY_US: Final = 3600_000_000
"""How often, in event time, state past its retention or window is swept out."""


# Functions rather than properties: compiled, a call is direct, where a property of this
# (non-native) class is looked up by name on every read.


def expects_settlement(st: TxnState) -> bool:
    """Approved, uncancelled SALEs and REFUNDs settle; nothing else does."""
    t = st.txn
    return t.status == "APPROVED" and t.type in SETTLING_TYPES and st.cancelled_by is None


def awaits_settlement(st: TxnState) -> bool:
    return not st.settled_ids and expects_settlement(st)


@dataclass(slots=True)
class MerchantState:
    txns: dict[str, TxnState] = field(default_factory=dict)
    settlements: dict[str, Settlement] = field(default_factory=dict)
    # Every line per txn_id, in arrival order, whether or not the transaction is known yet.
    lines: dict[str, tuple[Settlement, ...]] = field(default_factory=dict)
    # VOIDs/REVERSALs whose original has not arrived yet, by original txn_id.
    pending_cancels: dict[str, Transaction] = field(default_factory=dict)
    # (card_token, amount_minor, currency) -> recent approved sales as (ts, txn_id).
    sale_index: dict[tuple[str, int, str], list[tuple[int, str]]] = field(default_factory=dict)
    clusters: dict[str, DuplicateCluster] = field(default_factory=dict)
    terminals: dict[str, TerminalWindow] = field(default_factory=dict)
    # Open or closed alerts keyed by the evidence that identifies them.
    unmatched: dict[str, Alert] = field(default_factory=dict)  # by settlement_id
    duplicate_settlements: dict[str, Alert] = field(default_factory=dict)  # by txn_id
    refund_excess: dict[str, Alert] = field(default_factory=dict)  # by original txn_id
    # Transactions awaiting settlement (``awaits_settlement``), kept as they change so
    # the fleet view and gauges never scan a month of transactions.
    unsettled_count: int = 0
    unsettled_minor: dict[str, int] = field(default_factory=dict)

    def add_line(self, line: Settlement, st: TxnState | None) -> tuple[Settlement, ...]:
        """File ``line`` under its transaction (``st``, when known); its transaction's lines so
        far, in arrival order."""
        if st is not None:  # one string for the id, not one per line (a month of them is kept)
            line.txn_id = st.txn.txn_id
        known = self.lines.get(line.txn_id)
        # A tuple: nearly every transaction has one line, and never grows.
        lines = self.lines[line.txn_id] = (line,) if known is None else (*known, line)
        return lines

    def count_unsettled(self, t: Transaction, sign: int) -> None:
        """Add (``sign`` 1) or remove (-1) transaction ``t`` from the unsettled totals."""
        currency = t.currency
        totals = self.unsettled_minor
        self.unsettled_count += sign
        totals[currency] = totals.get(currency, 0) + sign * t.amount_minor
