"""What the pay-out rule's alerts say: their summaries, details and money at stake."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streams.money import format_amount
from streams.rules.payout_explain import as_lines, explain
from streams.rules.spec import Stake, detail_int, stake
from streams.timefmt import format_us

if TYPE_CHECKING:
    from streams.alerts import Alert
    from streams.events import Settlement
    from streams.rules.payout_match import Batch, Paid


def missing(batch: Batch, pw: int, missing_after_us: int) -> tuple[str, dict[str, Any]]:
    currency = batch.currency
    summary = (
        f"Batch {batch.label} of merchant {batch.merchant_id} "
        f"({format_amount(batch.net, currency)} net, {batch.count} lines, settled "
        f"{format_us(batch.settled_us)}) has not been paid: pay-outs have reached "
        f"{format_us(pw)}. Ask the acquirer for the pay-out."
    )
    details = {
        "batch_id": batch.name,
        "net_minor": batch.net,
        "currency": currency,
        "line_count": batch.count,
        "settled_at": format_us(batch.settled_us),
        "payout_watermark": format_us(pw),
        "due_by": format_us(batch.settled_us + missing_after_us),
        "payout_ids": [],
    }
    return summary, details


def mismatch(
    paid: Paid,
    fresh: list[Batch],
    twice: list[Batch],
    unknown: list[str],
    difference: int,
    lines: list[Settlement],
    tolerance: int,
) -> tuple[str, dict[str, Any], list[str]]:
    """Summary, details and the settlement lines to name, of a pay-out that pays ``fresh``
    batches, ``twice`` batches another pay-out already paid, and ``unknown`` batches."""
    currency = paid.currency
    reasons: list[dict[str, Any]] = []
    if twice:
        reasons.append(
            {
                "kind": "ALREADY_PAID",
                "settlement_ids": [],
                "batch_ids": [b.name for b in twice],
                "amount_minor": sum(b.net for b in twice),
                "text": "already paid by " + ", ".join(f"{b.paid_by} ({b.label})" for b in twice),
            }
        )
    if unknown:
        reasons.append(
            {
                "kind": "BATCH_NOT_SETTLED",
                "settlement_ids": [],
                "batch_ids": unknown,
                "text": f"no settlement line of {', '.join(unknown)} has arrived",
            }
        )
    if abs(difference) > tolerance:
        reasons.append(explain(difference, as_lines(lines), currency, tolerance))
    named = [sid for r in reasons for sid in r["settlement_ids"]]
    evidence = named or [line.settlement_id for line in lines]
    due = paid.amount - difference
    summary = (
        f"Pay-out {paid.payout_id} to merchant {paid.merchant_id} is "
        f"{format_amount(paid.amount, currency)} where its batches net "
        f"{format_amount(due, currency)}: " + "; ".join(r["text"] for r in reasons) + "."
    )
    details = {
        "payout_id": paid.payout_id,
        "payout_ids": [paid.payout_id],
        "amount_minor": paid.amount,
        "due_minor": due,
        "difference_minor": difference,
        "currency": currency,
        "value_date": format_us(paid.value_us),
        "batch_ids": [b.name for b in fresh + twice] + unknown,
        "explanation": reasons,
    }
    return summary, details, evidence


def unexplained(paid: Paid, sw: int) -> tuple[str, dict[str, Any]]:
    currency = paid.currency
    named = f" naming batches {', '.join(paid.batch_ids)}" if paid.batch_ids else ""
    summary = (
        f"Credit {paid.payout_id} of {format_amount(paid.amount, currency)} to merchant "
        f"{paid.merchant_id} (value date {format_us(paid.value_us)}){named} pays no "
        f"settlement batch, and settlements have reached {format_us(sw)}: find out who "
        "paid it before the merchant spends it."
    )
    details = {
        "payout_id": paid.payout_id,
        "payout_ids": [paid.payout_id],
        "amount_minor": paid.amount,
        "currency": currency,
        "value_date": format_us(paid.value_us),
        "batch_ids": paid.batch_ids or [],
        "settlement_watermark": format_us(sw),
    }
    return summary, details


def missing_stake(alert: Alert) -> Stake | None:
    d = alert.details
    return stake(d.get("currency"), detail_int(d.get("net_minor")), "settled, not paid")


def mismatch_stake(alert: Alert) -> Stake | None:
    d = alert.details
    return stake(d.get("currency"), abs(detail_int(d.get("difference_minor"))), "paid wrong")


def credit_stake(alert: Alert) -> Stake | None:
    d = alert.details
    return stake(d.get("currency"), detail_int(d.get("amount_minor")), "credited unexplained")
