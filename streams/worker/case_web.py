"""The case side of the worker's API: actions on one alert or a filtered list, CSV export, and
the case summary (states, overdue, production precision per alert type)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from streams.cases import CASE_STATES, CaseAction, CaseError, new_action
from streams.money import exponent, format_amount
from streams.stake import money_at_stake
from streams.worker.alertstore import AlertQuery, AlertStore, StoredAlert
from streams.worker.casebook import MAX_BULK

_FIELDS: Final = (
    "owner",
    "until",
    "disposition",
    "duplicate_of",
    "recovered_minor",
    "currency",
    "comment",
)
CSV_COLUMNS: Final = (
    "alert_id",
    "type",
    "severity",
    "status",
    "merchant_id",
    "terminal_id",
    "event_time",
    "detected_at",
    "case_state",
    "owner",
    "disposition",
    "sla_due",
    "overdue",
    "at_stake",
    "txn_ids",
    "settlement_ids",
    "summary",
)


def query_from(params: Mapping[str, Any], limit: int = 50, offset: int = 0) -> AlertQuery:
    """The API's filter parameters (``ValueError`` for a bad case state)."""

    def opt(name: str) -> str | None:
        value = params.get(name)
        return str(value).strip() if value else None

    state = opt("case")
    if state is not None and state not in CASE_STATES:
        raise ValueError(f"case must be one of {', '.join(CASE_STATES)}")
    return AlertQuery(
        status=opt("status"),
        type=opt("type"),
        severity=opt("severity"),
        merchant_id=opt("merchant"),
        terminal_id=opt("terminal"),
        text=opt("q"),
        case_state=state,
        owner=opt("owner"),
        overdue=opt("overdue") in ("1", "true", "yes"),
        limit=limit,
        offset=offset,
    )


def action_from(body: Any, now: str) -> CaseAction:
    """An operator's action from a JSON body ``{action, by, ...}`` (``CaseError`` if bad)."""
    if not isinstance(body, dict):
        raise CaseError("expected a JSON object {action, by, ...}")
    fields: dict[str, Any] = {}
    for name in _FIELDS:
        value = body.get(name)
        if value is None or value == "":
            continue
        if name == "recovered_minor":
            if isinstance(value, bool) or not isinstance(value, int):
                raise CaseError("recovered_minor must be an integer (minor units)")
            fields[name] = value
        else:
            fields[name] = str(value)
    if (
        "recovered" in body
        and body["recovered"] not in (None, "")
        and "recovered_minor" not in fields
    ):
        fields["recovered_minor"] = minor_units(str(body["recovered"]), fields.get("currency"))
    action = str(body.get("action") or "")
    if action == "open":
        raise CaseError("open is the system's own action")
    return new_action(action, str(body.get("by") or ""), now, **fields)


def minor_units(amount: str, currency: str | None) -> int:
    """An amount typed by an operator ("49.99" EUR) in minor units (4999); refused when the
    currency has fewer decimals than given."""
    if not currency:
        raise CaseError("an amount needs its currency")
    text = amount.strip().replace(" ", "").replace("\u00a0", "")
    # "12,345.67" (as the dashboard shows amounts) or "12,34" (a decimal comma).
    text = text.replace(",", "") if "." in text else text.replace(",", ".")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CaseError(f"{amount!r} is not an amount") from None
    minor = value.scaleb(exponent(currency.upper()))
    if not minor.is_finite() or minor != minor.to_integral_value():
        raise CaseError(f"{amount} has more decimals than {currency.upper()} has")
    return int(minor)


def export_csv(found: list[StoredAlert], sla_s: Mapping[str, int], now: datetime) -> str:
    """A filtered list as CSV, for a spreadsheet. A cell that a spreadsheet would take for a
    formula (``=``, ``+``, ``-``, ``@`` first) gets a leading apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for s in sorted(found, key=lambda s: (s.ts, s.alert.alert_id), reverse=True):
        a, case = s.alert, s.case
        due = case.sla_due(a.severity, sla_s) if case else None
        stake = money_at_stake(a)
        row = (
            a.alert_id,
            a.type,
            a.severity,
            a.status,
            a.merchant_id,
            a.terminal_id or "",
            a.event_time,
            s.detected_at,
            s.case_state(now),
            (case.owner if case else None) or "",
            (case.disposition if case else None) or "",
            due.isoformat().replace("+00:00", "Z") if due else "",
            "yes" if s.overdue(sla_s, now) else "",
            format_amount(stake.minor, stake.currency) if stake else "",
            " ".join(a.txn_ids),
            " ".join(a.settlement_ids),
            a.summary,
        )
        writer.writerow([_safe_cell(str(v)) for v in row])
    return out.getvalue()


def _safe_cell(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def case_summary(store: AlertStore, now: datetime | None = None) -> dict[str, Any]:
    """Cases by state, overdue ones by severity, and per alert type the operators' verdicts:
    precision = confirmed / (confirmed + false positive)."""
    now = now or datetime.now(UTC)
    states: Counter[str] = Counter()
    overdue: Counter[str] = Counter()
    verdicts: dict[str, Counter[str]] = {}
    for s in store.cases():
        states[s.case_state(now)] += 1
        if s.overdue(store.sla_s, now):
            overdue[s.alert.severity] += 1
        case = s.case
        if case is not None and case.state == "CLOSED" and case.disposition:
            verdicts.setdefault(s.alert.type, Counter())[case.disposition] += 1
    return {
        "states": {state: states[state] for state in CASE_STATES},
        "overdue": dict(overdue),
        "sla_seconds": dict(store.sla_s),
        "precision": {
            kind: {
                **dict(counts),
                "precision": precision(counts),
            }
            for kind, counts in sorted(verdicts.items())
        },
    }


def precision(verdicts: Mapping[str, int]) -> float | None:
    """confirmed / (confirmed + false positive); None before any verdict of either kind."""
    confirmed, wrong = verdicts.get("CONFIRMED", 0), verdicts.get("FALSE_POSITIVE", 0)
    return None if confirmed + wrong == 0 else round(confirmed / (confirmed + wrong), 4)


def bulk_targets(store: AlertStore, params: Mapping[str, Any]) -> list[str]:
    """The alert ids a bulk action over this filter would change (``CaseError`` past the cap)."""
    found = store.matching(query_from(params))
    if len(found) > MAX_BULK:
        raise CaseError(f"{len(found)} alerts match; narrow the filter to {MAX_BULK} or fewer")
    return [s.alert.alert_id for s in found]
