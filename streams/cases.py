"""Alerts worked as cases: the states, the actions operators take, and their history.

A case is the fold of its history: an append-only list of actions (who, when, what). Only the
history is stored; the state, owner, snooze, disposition and comment are derived from it, so a
stored case can never disagree with its own history. This module is pure (the wall-clock times
come in with the actions); the worker keeps the histories in a changelog-backed table
(``streams/worker/casebook.py``).

States: ``NEW`` until an operator acts; ``ACKNOWLEDGED`` once someone owns it; ``SNOOZED`` until
a time (then back to what it was); ``CLOSED`` with a disposition; a closed case may be reopened.
The alert's ``status`` (``OPEN``/``RESOLVED``) stays the system's own judgment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Final, Literal, TypeAlias

import msgspec

from streams.cardmask import mask_text
from streams.money import format_amount

CaseState: TypeAlias = Literal["NEW", "ACKNOWLEDGED", "SNOOZED", "CLOSED"]
CASE_STATES: Final = ("NEW", "ACKNOWLEDGED", "SNOOZED", "CLOSED")
Disposition: TypeAlias = Literal["CONFIRMED", "FALSE_POSITIVE", "DUPLICATE", "RECOVERED"]
DISPOSITIONS: Final = ("CONFIRMED", "FALSE_POSITIVE", "DUPLICATE", "RECOVERED")
ACTIONS: Final = ("open", "acknowledge", "assign", "snooze", "close", "reopen", "comment")
"""``open`` is the system's: it records when the case began (the SLA counts from there)."""

DEFAULT_SLA_S: Final[Mapping[str, int]] = {
    "CRITICAL": 4 * 3600,
    "HIGH": 24 * 3600,
    "MEDIUM": 72 * 3600,
    "LOW": 7 * 86400,
}
MAX_HISTORY: Final = 500
"""A case's history is bounded; an action past it is refused (a runaway script, not an operator)."""
_MAX_NAME, _MAX_COMMENT = 80, 2000


class CaseError(ValueError):
    """An action that cannot apply to the case as it stands; the message says why."""


class CaseAction(msgspec.Struct, frozen=True, omit_defaults=True):
    """One entry of a case's history."""

    action: str
    by: str
    at: str
    """Wall clock, RFC 3339 (operators work in wall time; detection never reads this)."""
    owner: str | None = None
    until: str | None = None
    disposition: str | None = None
    duplicate_of: str | None = None
    recovered_minor: int | None = None
    currency: str | None = None
    comment: str = ""


class Case(msgspec.Struct, frozen=True):
    """A case as its history makes it (``fold``)."""

    state: CaseState = "NEW"
    owner: str | None = None
    snoozed_until: str | None = None
    disposition: Disposition | None = None
    duplicate_of: str | None = None
    recovered_minor: int | None = None
    currency: str | None = None
    comment: str = ""
    opened_at: str | None = None
    closed_at: str | None = None
    history: tuple[CaseAction, ...] = ()

    def effective_state(self, now: datetime) -> CaseState:
        """The state an operator sees at ``now``: a snooze that ran out is over."""
        if self.state == "SNOOZED" and self.snoozed_until and _time(self.snoozed_until) <= now:
            return "ACKNOWLEDGED" if self.owner else "NEW"
        return self.state

    def sla_due(self, severity: str, sla_s: Mapping[str, int]) -> datetime | None:
        if self.opened_at is None or severity not in sla_s:
            return None
        return _time(self.opened_at) + timedelta(seconds=sla_s[severity])

    def overdue(self, severity: str, sla_s: Mapping[str, int], now: datetime) -> bool:
        """Past its SLA and still waiting for someone (not closed, not snoozed right now)."""
        due = self.sla_due(severity, sla_s)
        return (
            due is not None and now > due and self.effective_state(now) in ("NEW", "ACKNOWLEDGED")
        )


def new_action(
    action: str,
    by: str,
    at: str,
    *,
    owner: str | None = None,
    until: str | None = None,
    disposition: str | None = None,
    duplicate_of: str | None = None,
    recovered_minor: int | None = None,
    currency: str | None = None,
    comment: str = "",
) -> CaseAction:
    """An operator's action, with its free text masked (an operator may paste a card number)
    and cut to size, and its fields checked for the action (``CaseError`` says what is wrong)."""
    by = mask_text(by.strip())[:_MAX_NAME]
    if action not in ACTIONS:
        raise CaseError(f"unknown action {action!r} (known: {', '.join(ACTIONS[1:])})")
    if not by:
        raise CaseError("say who acts (by)")
    if action == "assign" and not (owner and owner.strip()):
        raise CaseError("assign needs an owner")
    if action == "snooze":
        if not until:
            raise CaseError("snooze needs until (an RFC 3339 time)")
        try:
            when = _time(until)
        except ValueError:
            raise CaseError(f"until {until!r} is not an RFC 3339 time with an offset") from None
        if when <= _time(at):
            raise CaseError("until must be in the future")
    if action == "close":
        _check_close(disposition, duplicate_of, recovered_minor, currency)
    return CaseAction(
        action=action,
        by=by,
        at=at,
        owner=mask_text(owner.strip())[:_MAX_NAME] if owner else None,
        until=until if action == "snooze" else None,
        disposition=disposition if action == "close" else None,
        duplicate_of=duplicate_of if action == "close" else None,
        recovered_minor=recovered_minor if action == "close" else None,
        currency=currency if action == "close" else None,
        comment=mask_text(comment)[:_MAX_COMMENT],
    )


def _check_close(
    disposition: str | None, duplicate_of: str | None, recovered: int | None, currency: str | None
) -> None:
    if disposition not in DISPOSITIONS:
        raise CaseError(f"close needs a disposition: one of {', '.join(DISPOSITIONS)}")
    if disposition == "DUPLICATE" and not duplicate_of:
        raise CaseError("a duplicate names the alert it duplicates (duplicate_of)")
    if disposition == "RECOVERED":
        if isinstance(recovered, bool) or not isinstance(recovered, int) or recovered <= 0:
            raise CaseError("money recovered needs recovered_minor, an integer above 0")
        if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
            raise CaseError("money recovered needs its currency (ISO 4217, e.g. EUR)")


def apply(case: Case, action: CaseAction) -> Case:
    """The case after ``action``, or ``CaseError`` when the action does not fit its state."""
    if len(case.history) >= MAX_HISTORY:
        raise CaseError(f"the case's history is full ({MAX_HISTORY} entries)")
    kind, state = action.action, case.state
    if kind == "open":
        return msgspec.structs.replace(
            case, opened_at=case.opened_at or action.at, history=(*case.history, action)
        )
    if state == "CLOSED" and kind not in ("reopen", "comment"):
        raise CaseError("the case is closed: reopen it first")
    if kind == "reopen" and state != "CLOSED":
        raise CaseError("only a closed case can be reopened")
    changes: dict[str, object] = {"history": (*case.history, action)}
    if kind == "acknowledge":
        changes.update(state="ACKNOWLEDGED", owner=action.owner or action.by, snoozed_until=None)
    elif kind == "assign":
        changes.update(state="ACKNOWLEDGED", owner=action.owner, snoozed_until=None)
    elif kind == "snooze":
        changes.update(state="SNOOZED", snoozed_until=action.until)
    elif kind == "close":
        changes.update(
            state="CLOSED",
            snoozed_until=None,
            disposition=action.disposition,
            duplicate_of=action.duplicate_of,
            recovered_minor=action.recovered_minor,
            currency=action.currency,
            closed_at=action.at,
        )
    elif kind == "reopen":
        changes.update(
            state="ACKNOWLEDGED" if case.owner else "NEW",
            disposition=None,
            duplicate_of=None,
            recovered_minor=None,
            currency=None,
            closed_at=None,
        )
    if action.comment:
        changes["comment"] = action.comment
    return msgspec.structs.replace(case, **changes)


def fold(history: Iterable[CaseAction]) -> Case:
    """The case a stored history makes (each entry was valid when it was taken)."""
    case = Case()
    for action in history:
        case = apply(case, action)
    return case


_history_decoder = msgspec.json.Decoder(list[CaseAction])
_encoder = msgspec.json.Encoder()


def encode_history(case: Case) -> bytes:
    return _encoder.encode(list(case.history))


def decode_history(data: bytes) -> Case:
    """A stored case. A value written before cases existed (``{by, at, note}``, an
    acknowledgement) reads as one ``acknowledge`` action."""
    if data[:1] == b"{":
        old = msgspec.json.decode(data)
        ack = CaseAction("acknowledge", str(old["by"]), str(old["at"]), comment=old.get("note", ""))
        return fold([ack])
    return fold(_history_decoder.decode(data))


def case_json(
    case: Case, severity: str, sla_s: Mapping[str, int], now: datetime
) -> dict[str, object]:
    """The contract's ``case`` object of an alert (the API's and the alerts topic's)."""
    due = case.sla_due(severity, sla_s)
    return {
        "state": case.effective_state(now),
        "owner": case.owner,
        "snoozed_until": case.snoozed_until if case.effective_state(now) == "SNOOZED" else None,
        "disposition": case.disposition,
        "duplicate_of": case.duplicate_of,
        "recovered_minor": case.recovered_minor,
        "currency": case.currency,
        "recovered": (
            format_amount(case.recovered_minor, case.currency)
            if case.recovered_minor is not None and case.currency
            else None
        ),
        "comment": case.comment,
        "opened_at": case.opened_at,
        "closed_at": case.closed_at,
        "sla_due": None if due is None else _rfc3339(due),
        "overdue": case.overdue(severity, sla_s, now),
        "history": [msgspec.to_builtins(a) for a in case.history if a.action != "open"],
    }


def acknowledgement(case: Case) -> dict[str, str] | None:
    """The latest acknowledgement as the API gave it before cases (who, when, note)."""
    for action in reversed(case.history):
        if action.action in ("acknowledge", "assign"):
            return {"by": action.owner or action.by, "at": action.at, "note": action.comment}
    return None


def case_fields(
    case: Case | None, severity: str, sla_s: Mapping[str, int], now: datetime
) -> dict[str, object]:
    """An alert's case fields for the API and the alerts topic: ``case`` (a ``NEW`` one when
    nobody acted yet) and, once someone did, ``acknowledgement``."""
    case = case or Case()
    return {"case": case_json(case, severity, sla_s, now), "acknowledgement": acknowledgement(case)}


def _time(text: str) -> datetime:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no offset")
    return when


def _rfc3339(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")
