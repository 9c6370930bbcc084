"""The canonical order of the events of one engine step, and what counts as the same event.

Events that share an engine time are applied in an order of their own content, never their
arrival order: sales, then other transactions, then settlement lines, outcomes and pay-outs, each
by id; events that share an id (a redelivery, or a conflict, inside one step) by content. So the
order in which a partition's topics happened to interleave never changes what the engine decides.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from operator import attrgetter

import msgspec

from streams.events import Event, Feedback, Settlement, Transaction


def content(event: Event) -> bytes:
    """The event's contract content; one instant written in two offsets is the same content,
    whatever time the partition's clock gave it."""
    if isinstance(event, Transaction):
        plain: Event = msgspec.structs.replace(
            event, origin=None, ts=0, at=0, event_time=event.event_time.astimezone(UTC)
        )
    elif isinstance(event, Settlement):
        plain = msgspec.structs.replace(
            event, origin=None, ts=0, at=0, settled_at=event.settled_at.astimezone(UTC)
        )
    elif isinstance(event, Feedback):
        plain = msgspec.structs.replace(
            event, origin=None, ts=0, at=0, known_at=event.known_at.astimezone(UTC)
        )
    else:
        plain = msgspec.structs.replace(
            event, origin=None, ts=0, at=0, value_date=event.value_date.astimezone(UTC)
        )
    return msgspec.json.encode(plain)


def same_content(a: Event, b: Event) -> bool:
    return type(a) is type(b) and content(a) == content(b)


def canonical_order(events: list[Event]) -> list[Event]:
    """Sales, then other transactions, then settlement lines, outcomes and pay-outs, each by id.
    Where two events share an id (a redelivery or a conflict in one step) they are ordered by
    content, so which one counts as first never depends on arrival order."""
    if len(events) == 2:  # the usual step of several events: two sales in the same second
        a, b = events[0], events[1]
        if type(a) is Transaction and type(b) is Transaction:
            a_later = a.type != "SALE"
            if a_later != (b.type != "SALE"):
                return [b, a] if a_later else events
            if a.txn_id != b.txn_id:
                return events if a.txn_id < b.txn_id else [b, a]
    if all(type(e) is Settlement for e in events):  # a settlement batch: often tens of thousands
        return _by_id_then_content(events, _by_settlement_id)
    sales: list[Event] = []
    others: list[Event] = []
    lines: list[Event] = []
    outcomes: list[Event] = []
    payouts: list[Event] = []
    for e in events:
        if type(e) is Transaction:
            (sales if e.type == "SALE" else others).append(e)
        elif type(e) is Settlement:
            lines.append(e)
        elif type(e) is Feedback:
            outcomes.append(e)
        else:
            payouts.append(e)
    return [
        *_by_id_then_content(sales, _by_txn_id),
        *_by_id_then_content(others, _by_txn_id),
        *_by_id_then_content(lines, _by_settlement_id),
        *_by_id_then_content(outcomes, _by_feedback_id),
        *_by_id_then_content(payouts, _by_payout_id),
    ]


def _by_id_then_content(events: list[Event], key: Callable[[Event], str]) -> list[Event]:
    """``events`` by id (``key``, a C-level getter), those sharing an id by content. The sort is
    stable and equal ids end up adjacent, so one pass over neighbours finds them."""
    if len(events) < 2:
        return events
    ordered = sorted(events, key=key)
    ids = list(map(key, ordered))
    start = 0
    for k in range(1, len(ordered) + 1):
        if k == len(ordered) or ids[k] != ids[start]:
            if k - start > 1:
                ordered[start:k] = sorted(ordered[start:k], key=content)
            start = k
    return ordered


_by_settlement_id: Callable[[Event], str] = attrgetter("settlement_id")
_by_txn_id: Callable[[Event], str] = attrgetter("txn_id")
_by_feedback_id: Callable[[Event], str] = attrgetter("feedback_id")
_by_payout_id: Callable[[Event], str] = attrgetter("payout_id")
