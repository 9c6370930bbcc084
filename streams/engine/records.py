"""The engine's state records: msgspec structs, one per transaction, cluster, terminal window or
card, and the structs of a snapshot (``streams/engine/snapshot.py``).

They live in this module, which is not compiled, because mypyc keeps only the outer class of a
compiled module's annotations (``Alert | None`` becomes ``type``), and msgspec reads the
annotations to decode a snapshot (``streams/engine/snapshot.py``). Attribute access costs the same
either way: a msgspec struct is never a native class.
"""

from __future__ import annotations

from collections import deque

import msgspec

from models.feature_state import FeatureState
from streams.alerts import Alert
from streams.events import Feedback, Payout, Settlement, Transaction


class TxnState(msgspec.Struct, gc=False):
    """A transaction and what later evidence taught us about it.

    One exists per transaction in retention, so it is a GC-free struct whose id lists are tuples
    (no allocation while empty, which they nearly always are).
    """

    txn: Transaction
    cancelled_by: str | None = None
    settled_ids: tuple[str, ...] = ()
    refunded_minor: int = 0
    refund_ids: tuple[str, ...] = ()
    missing: Alert | None = None


class DuplicateCluster(msgspec.Struct, gc=False):
    """Approved sales that duplicate each other; one alert for the whole cluster."""

    members: list[str]
    alert: Alert


class TerminalWindow(msgspec.Struct, gc=False):
    """Recent attempts of one terminal: ``(ts, timed_out, txn_id)`` in event-time order, and how
    many of them timed out."""

    attempts: deque[tuple[int, bool, str]] = msgspec.field(default_factory=deque)
    timeouts: int = 0
    alert: Alert | None = None
    resolved_ts: int | None = None


class CardHistory(msgspec.Struct, gc=False):
    sales: list[tuple[int, str, str]]  # (ts, merchant, txn_id)
    alert: Alert | None = None
    last_ts: int = 0


_TerminalRow = tuple[str, str, int, str, int | None, int, list[str], Alert | None]
"""A clock's ``_Terminal`` as its fields in order (``contradicted_by`` sorted)."""


class ClockState(msgspec.Struct, array_like=True, frozen=True):
    """What a ``PartitionClock`` knows, for a snapshot (``streams/engine/snapshot.py``)."""

    watermark: int | None
    odd: list[_TerminalRow]
    claims: list[int]
    """The pending claims, in their order, as positions in ``odd`` (a claim is an odd one)."""
    judging: bool
    first_terminals: list[tuple[str, str, int]]
    first_txns: list[tuple[str, str, str]]
    first_merchant: str | None
    one_merchant: bool


class MerchantSnapshot(msgspec.Struct, array_like=True):
    """A ``MerchantState``: the ledger's, or the transaction rules' own."""

    merchant_id: str
    txns: list[TxnState]
    settlements: list[Settlement]
    """In arrival order; each transaction's lines are these, regrouped."""
    pending_cancels: list[Transaction]
    sale_index: list[tuple[str, int, str, list[tuple[int, str]]]]
    clusters: dict[str, DuplicateCluster]
    terminals: list[tuple[str, list[tuple[int, bool, str]], int, Alert | None, int | None]]
    unmatched: dict[str, Alert]
    duplicate_settlements: dict[str, Alert]
    refund_excess: dict[str, Alert]
    unsettled_count: int
    unsettled_minor: dict[str, int]


class EngineSnapshot(msgspec.Struct, array_like=True):
    stats: tuple[int, int, int]
    merchants: list[MerchantSnapshot]
    expiry: bytes
    """The retention queue, an unsigned 32-bit integer per entry: twice the position of its
    merchant in ``merchants``, plus 1 for a settlement line."""
    feed: tuple[
        int | None, int | None, int | None, str | None, Alert | None, int | None, int | None
    ]
    clock: ClockState
    missing: list[tuple[int, str, str]]
    unmatched: list[tuple[int, str, str]]
    rules: list[tuple[str, msgspec.Raw]]
    """Each rule outside the ledger's state, by class name, in the engine's order."""
    step_txns: list[Transaction]
    step_lines: list[Settlement]
    step_kinds: bytes
    """The open step's events in order: 0 for the next of ``step_txns``, 1 of ``step_lines``, 2
    of ``step_outcomes``, 3 of ``step_payouts``."""
    step_origins: list[tuple[int | str, int, bytes] | None]
    """Their ``origin`` (where the driver read them), typed: as a field it would come back with
    its bytes as text."""
    step_ts: int | None
    last_run: int | None
    next_sweep: int | None
    next_feature_sweep: int | None
    rule_merchants: list[MerchantSnapshot]
    velocity: dict[str, CardHistory]
    features: FeatureState
    scored: int
    outcomes: list[Feedback]
    """Accepted outcomes, in the order they were accepted."""
    waiting: list[str]
    """The ``feedback_id`` of those still waiting for their sale, in the order they wait."""
    outcome_counts: tuple[int, int]
    step_outcomes: list[Feedback]
    payouts: list[Payout] = []
    """Accepted pay-outs still retained, in the order they were accepted."""
    step_payouts: list[Payout] = []
    payout_count: int = 0
