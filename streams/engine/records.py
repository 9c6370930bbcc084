"""The engine's state records: msgspec structs, one per transaction, cluster, terminal window or
card, and what a snapshot keeps of the partition clock.

They live in this module, which is not compiled, because mypyc keeps only the outer class of a
compiled module's annotations (``Alert | None`` becomes ``type``), and msgspec reads the
annotations to decode a snapshot (``streams/engine/snapshot.py``). Attribute access costs the same
either way: a msgspec struct is never a native class.
"""

from __future__ import annotations

from collections import deque

import msgspec

from streams.alerts import Alert
from streams.events import Transaction


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
