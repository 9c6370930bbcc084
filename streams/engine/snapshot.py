"""An engine's whole state as bytes, and back: what a worker taking over a partition loads instead
of feeding the engine a month of journal again (``streams/worker/snapshots.py``).

The engine is a deterministic function of its ordered input, so its state at a point of that input
is everything it needs to go on exactly as it would have: an engine loaded from a snapshot and fed
the rest of the input gives the same alerts, with the same ids and content, as one fed all of it
(``tests/unit/test_snapshot.py`` checks this at arbitrary points).

The format is msgspec's JSON with typed structs (MessagePack would turn every timestamp into
UTC, and a sale's local hour and its evidence read the offset it was sent with), versioned by
``format_version``: the format number, and a digest of the schema of every struct in it (the
engine's, the events', the alerts', each rule's ``state_type``) and of the configuration. A
snapshot written by another
version, or under another configuration, is refused (``SnapshotRefusedError``) and the worker falls
back to its journal.

Identity that matters is rebuilt rather than stored: the retention queue holds the very
transaction states and settlement lines the merchants' ledgers hold, in arrival order, and that
order is kept as one small integer per entry; a transaction's lines are its merchant's lines
regrouped.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import msgspec

from streams.decode import contract_bytes
from streams.engine.records import EngineSnapshot, MerchantSnapshot, TerminalWindow, TxnState
from streams.engine.state import MerchantState
from streams.engine.txn_rules import LocalRules, TransactionRules
from streams.events import Event, Feedback, Payout, Settlement, Transaction

if TYPE_CHECKING:
    from streams.engine.core import Engine

FORMAT: Final = 1
"""Raised by hand when what a field means changes without its type changing."""


class SnapshotRefusedError(Exception):
    """A snapshot this posguard cannot load; the message says why, in operator words."""


_Snapshot = tuple[str, msgspec.Raw]
"""``(format_version, EngineSnapshot)``: the version is read before the rest is decoded."""

_encoder = msgspec.json.Encoder()
_header = msgspec.json.Decoder(_Snapshot)
_body = msgspec.json.Decoder(EngineSnapshot)


def format_version(engine: Engine) -> str:
    """The format this posguard writes for ``engine``: equal only between builds whose snapshot
    schema, byte order and engine configuration are the same."""
    types: list[Any] = [EngineSnapshot]
    types.extend(rule.state_type() for rule in engine.rules)
    schema = msgspec.json.encode(msgspec.json.schema_components(types))
    digest = hashlib.sha256(schema)
    digest.update(repr(engine.config).encode())
    return f"{FORMAT}.{sys.byteorder}.{digest.hexdigest()[:16]}"


def take(engine: Engine, held: int = 0) -> bytes:
    """``engine``'s state between two events, its outbox handed over. ``held``: how many
    transactions admitted and not submitted yet have clock alerts waiting (``held_reports``),
    which the driver keeps with them."""
    if len(engine._reports) != held:
        raise ValueError("a transaction admitted but not submitted is missing from the snapshot")
    if engine.out.alerts or engine.out.rejections or engine.out.sales:
        raise ValueError("a snapshot is taken with the outbox handed over")
    offload = engine.offload
    if not isinstance(offload, LocalRules):
        raise ValueError("a snapshot needs the transaction rules and the model in this process")
    merchants = list(engine.merchants.items())
    position = {merchant_id: 2 * i for i, (merchant_id, _) in enumerate(merchants)}
    expiry = array("I")
    for entry in engine._expiry.entries:
        if type(entry) is TxnState:
            expiry.append(position[entry.txn.merchant_id])
        else:
            expiry.append(position[entry.merchant_id] + 1)  # type: ignore[union-attr]
    step = engine._step
    outcomes = engine.outcomes
    rules: TransactionRules = offload.rules
    snapshot = EngineSnapshot(
        stats=(engine.stats.transactions, engine.stats.settlements, engine.stats.redeliveries),
        merchants=[_merchant(merchant_id, ms) for merchant_id, ms in merchants],
        expiry=expiry.tobytes(),
        feed=engine.feed.state(),
        clock=engine.times.state(),
        missing=engine.reconcile._missing.entries(),
        unmatched=engine.reconcile._unmatched.entries(),
        rules=[
            (type(rule).__name__, msgspec.Raw(_encoder.encode(rule.state())))
            for rule in engine.rules
        ],
        step_txns=[_unsourced(e) for e in step if type(e) is Transaction],
        step_lines=[_unsourced(e) for e in step if type(e) is Settlement],
        step_kinds=bytes(_STEP_KIND[type(e)] for e in step),
        # Where each came from, with the event as its contract fields rather than the bytes it
        # came as (fields outside the contract, where a card number could hide, are not kept).
        step_origins=[
            None if e.origin is None else (e.origin[0], e.origin[1], contract_bytes(e))
            for e in step
        ],
        step_ts=engine._step_ts,
        last_run=engine._last_run,
        next_sweep=engine._next_sweep,
        next_feature_sweep=engine._next_feature_sweep,
        rule_merchants=[_merchant(m, ms) for m, ms in rules.merchants.items()],
        velocity=rules.velocity.cards,
        features=offload.model.tracker.state(),
        scored=offload.model.scored,
        outcomes=[_unsourced(f) for f in outcomes.known.values()],
        waiting=[f.feedback_id for waiting in outcomes.waiting.values() for f in waiting],
        outcome_counts=(outcomes.accepted, outcomes.redeliveries),
        step_outcomes=[_unsourced(e) for e in step if type(e) is Feedback],
        payouts=[_unsourced(p) for p in engine.payouts.values()],
        step_payouts=[_unsourced(e) for e in step if type(e) is Payout],
        payout_count=engine.stats.payouts,
    )
    return _encoder.encode((format_version(engine), msgspec.Raw(_encoder.encode(snapshot))))


def load(engine: Engine, data: bytes | msgspec.Raw) -> None:
    """Give ``engine`` (fresh, built as the one the snapshot was taken of) the state in ``data``.

    Raises ``SnapshotRefusedError`` for a snapshot of another format or configuration, or one that
    does not decode; ``engine`` is then still fresh.
    """
    try:
        version, body = _header.decode(data)
    except msgspec.DecodeError as error:
        raise SnapshotRefusedError(f"the snapshot does not decode ({error})") from None
    expected = format_version(engine)
    if version != expected:
        raise SnapshotRefusedError(
            f"the snapshot is format {version}, this posguard and configuration write {expected}"
        )
    try:
        s = _body.decode(body)
        rule_states = [
            msgspec.json.decode(raw, type=rule.state_type())
            for rule, (_, raw) in zip(engine.rules, s.rules, strict=True)
        ]
    except (msgspec.DecodeError, ValueError) as error:
        raise SnapshotRefusedError(f"the snapshot does not decode ({error})") from None
    offload = engine.offload
    if not isinstance(offload, LocalRules):
        raise ValueError("a snapshot needs the transaction rules and the model in this process")
    expiry = array("I")
    expiry.frombytes(s.expiry)
    sequences: list[list[Any]] = []
    for m in s.merchants:
        sequences.append(m.txns)
        sequences.append(m.settlements)
    engine._expiry.entries = _interleave(expiry, sequences)
    for m in s.merchants:
        engine.merchants[m.merchant_id] = _merchant_state(m)
    stats = engine.stats
    stats.transactions, stats.settlements, stats.redeliveries = s.stats
    engine.feed.load_state(s.feed)
    engine.times.load_state(s.clock)
    engine.reconcile._missing.load(s.missing)
    engine.reconcile._unmatched.load(s.unmatched)
    for rule, state in zip(engine.rules, rule_states, strict=True):
        rule.load_state(state)
    steps: tuple[Iterator[Event], ...] = (
        iter(s.step_txns),
        iter(s.step_lines),
        iter(s.step_outcomes),
        iter(s.step_payouts),
    )
    engine._step = [next(steps[kind]) for kind in s.step_kinds]
    for event, origin in zip(engine._step, s.step_origins, strict=True):
        event.origin = origin
    engine._step_ts = s.step_ts
    engine._last_run = s.last_run
    engine._next_sweep = s.next_sweep
    engine._next_feature_sweep = s.next_feature_sweep
    rules = offload.rules
    rules.merchants = {m.merchant_id: _merchant_state(m) for m in s.rule_merchants}
    rules.velocity.cards = s.velocity
    offload.model.tracker.load_state(s.features)
    offload.model.scored = s.scored
    outcomes = engine.outcomes
    outcomes.known = {f.feedback_id: f for f in s.outcomes}
    for feedback_id in s.waiting:
        f = outcomes.known[feedback_id]
        outcomes.waiting.setdefault(f.txn_id, []).append(f)
    outcomes.accepted, outcomes.redeliveries = s.outcome_counts
    engine.payouts = {(p.merchant_id, p.payout_id): p for p in s.payouts}
    stats.payouts = s.payout_count


_STEP_KIND: Final = {Transaction: 0, Settlement: 1, Feedback: 2, Payout: 3}


def _unsourced(event: Any) -> Any:
    """``event`` without its ``origin`` (kept apart, in ``step_origins``)."""
    return msgspec.structs.replace(event, origin=None)


def _interleave(order: array[int], sequences: list[list[Any]]) -> deque[Any]:
    """The entries of ``sequences`` in the order ``order`` names them (by sequence), each
    sequence's in its own order."""
    positions = [0] * len(sequences)
    entries: deque[Any] = deque()
    append = entries.append
    for which in order:
        k = positions[which]
        append(sequences[which][k])
        positions[which] = k + 1
    if positions != [len(x) for x in sequences]:
        raise SnapshotRefusedError("the snapshot's retention queue does not match its ledgers")
    return entries


def _merchant(merchant_id: str, ms: MerchantState) -> MerchantSnapshot:
    return MerchantSnapshot(
        merchant_id=merchant_id,
        txns=list(ms.txns.values()),
        settlements=list(ms.settlements.values()),
        pending_cancels=list(ms.pending_cancels.values()),
        sale_index=[
            (card, amount, cur, recent) for (card, amount, cur), recent in ms.sale_index.items()
        ],
        clusters=ms.clusters,
        terminals=[
            (terminal_id, list(w.attempts), w.timeouts, w.alert, w.resolved_ts)
            for terminal_id, w in ms.terminals.items()
        ],
        unmatched=ms.unmatched,
        duplicate_settlements=ms.duplicate_settlements,
        refund_excess=ms.refund_excess,
        unsettled_count=ms.unsettled_count,
        unsettled_minor=ms.unsettled_minor,
    )


def _merchant_state(m: MerchantSnapshot) -> MerchantState:
    ms = MerchantState(
        txns={st.txn.txn_id: st for st in m.txns},
        pending_cancels={t.original_txn_id or "": t for t in m.pending_cancels},
        sale_index={(card, amount, cur): recent for card, amount, cur, recent in m.sale_index},
        clusters=m.clusters,
        terminals={
            terminal_id: TerminalWindow(deque(attempts), timeouts, alert, resolved_ts)
            for terminal_id, attempts, timeouts, alert, resolved_ts in m.terminals
        },
        unmatched=m.unmatched,
        duplicate_settlements=m.duplicate_settlements,
        refund_excess=m.refund_excess,
        unsettled_count=m.unsettled_count,
        unsettled_minor=m.unsettled_minor,
    )
    txns, settlements = ms.txns, ms.settlements
    moment: datetime | None = None
    moment_ts = 0
    for line in m.settlements:
        settlements[line.settlement_id] = line
        ms.add_line(line, txns.get(line.txn_id))
        # A batch's lines share one settled_at, as the decoder shares it: a month of lines
        # would otherwise hold a copy each.
        if line.settled_at == moment and line.ts == moment_ts:
            line.settled_at, line.ts = moment, moment_ts
        else:
            moment, moment_ts = line.settled_at, line.ts
    return ms
