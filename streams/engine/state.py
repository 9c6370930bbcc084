"""The engine's state, partitioned by merchant like the input topics.

Everything a merchant's rules need lives in its ``MerchantState``; card velocity (keyed by card)
and the feed watermarks (one feed) live beside it in their own components.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.alerts import Alert
from streams.events import Settlement, Transaction


class TxnState:
    """A transaction and what later evidence taught us about it."""

    __slots__ = ("cancelled_by", "missing", "refund_ids", "refunded_minor", "settled_ids", "txn")

    def __init__(self, txn: Transaction) -> None:
        self.txn = txn
        self.cancelled_by: str | None = None
        self.settled_ids: list[str] = []
        self.refunded_minor = 0
        self.refund_ids: list[str] = []
        self.missing: Alert | None = None

    @property
    def approved(self) -> bool:
        return self.txn.status == "APPROVED"

    @property
    def expects_settlement(self) -> bool:
        """Approved, uncancelled SALEs and REFUNDs settle; nothing else does."""
        t = self.txn
        return t.status == "APPROVED" and t.type in ("SALE", "REFUND") and self.cancelled_by is None


@dataclass(slots=True)
class DuplicateCluster:
    """Approved sales that duplicate each other; one alert for the whole cluster."""

    members: list[str]
    alert: Alert


@dataclass(slots=True)
class TerminalWindow:
    """Recent attempts of one terminal: ``(ts, timed_out, txn_id)`` in event-time order."""

    attempts: list[tuple[int, bool, str]] = field(default_factory=list)
    alert: Alert | None = None
    resolved_ts: int | None = None


@dataclass(slots=True)
class MerchantState:
    txns: dict[str, TxnState] = field(default_factory=dict)
    settlements: dict[str, Settlement] = field(default_factory=dict)
    # Every line per txn_id, in arrival order, whether or not the transaction is known yet.
    lines: dict[str, list[Settlement]] = field(default_factory=dict)
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
