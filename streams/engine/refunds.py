"""REFUND_ANOMALY: refunds with no approved sale behind them, or more than the sale."""

from __future__ import annotations

from streams.config import Config
from streams.engine.describe import txn_evidence
from streams.engine.outbox import Outbox
from streams.engine.state import MerchantState, TxnState
from streams.money import format_amount


class Refunds:
    def __init__(self, config: Config, out: Outbox) -> None:
        self.cfg = config.refund_anomaly
        self.out = out

    def on_refund(self, ms: MerchantState, st: TxnState) -> None:
        """``st`` is an approved REFUND (uncancelled when it arrives)."""
        t = st.txn
        assert t.original_txn_id is not None  # the decoder requires it for REFUND
        original = ms.txns.get(t.original_txn_id)
        problem = _original_problem(original, t.currency)
        if problem is not None:
            if self.cfg.enabled:
                evidence = [t.txn_id] + ([original.txn.txn_id] if original else [])
                self.out.open(
                    "REFUND_ANOMALY",
                    self.cfg,
                    (t.merchant_id, t.txn_id, "UNKNOWN_ORIGINAL"),
                    merchant_id=t.merchant_id,
                    terminal_id=t.terminal_id,
                    txn_ids=evidence,
                    settlement_ids=[],
                    ts=t.ts,
                    summary=(
                        f"Refund {t.txn_id} of {format_amount(t.amount_minor, t.currency)} at "
                        f"merchant {t.merchant_id} refers to {t.original_txn_id}, {problem}: "
                        "confirm the refund with the merchant before it settles."
                    ),
                    details={
                        "reason": "UNKNOWN_ORIGINAL",
                        "original_txn_id": t.original_txn_id,
                        "problem": problem,
                        "refund": txn_evidence(t),
                        "card_token": t.card_token,
                    },
                )
            return
        assert original is not None
        original.refund_ids += (t.txn_id,)
        original.refunded_minor += t.amount_minor
        self._check_excess(ms, original, t.ts)

    def on_cancel(self, ms: MerchantState, cancelled: TxnState, ts: int) -> None:
        """A VOID/REVERSAL just cancelled ``cancelled``: a voided refund no longer counts, and a
        voided sale can no longer be refunded at all."""
        t = cancelled.txn
        if t.type == "REFUND" and t.original_txn_id is not None:
            original = ms.txns.get(t.original_txn_id)
            if original is not None and t.txn_id in original.refund_ids:
                original.refund_ids = tuple(r for r in original.refund_ids if r != t.txn_id)
                original.refunded_minor -= t.amount_minor
        elif t.type == "SALE" and cancelled.refunded_minor:
            self._check_excess(ms, cancelled, ts)

    def _check_excess(self, ms: MerchantState, sale: TxnState, ts: int) -> None:
        t = sale.txn
        limit = 0 if sale.cancelled_by else t.amount_minor
        if sale.refunded_minor <= limit or not self.cfg.enabled:
            return
        refunded = format_amount(sale.refunded_minor, t.currency)
        why = (
            f"after the sale was cancelled by {sale.cancelled_by}"
            if sale.cancelled_by
            else f"against a sale of {format_amount(t.amount_minor, t.currency)}"
        )
        summary = (
            f"Sale {t.txn_id} at merchant {t.merchant_id} was refunded {refunded} in "
            f"{len(sale.refund_ids)} refund{'s' if len(sale.refund_ids) > 1 else ''} {why}: "
            "stop the excess refund."
        )
        details = {
            "reason": "EXCEEDS_ORIGINAL",
            "sale_amount_minor": t.amount_minor,
            "refunded_minor": sale.refunded_minor,
            "excess_minor": sale.refunded_minor - limit,
            "currency": t.currency,
            "refund_ids": list(sale.refund_ids),
            "sale": txn_evidence(t),
            "card_token": t.card_token,
        }
        txn_ids = [t.txn_id, *sale.refund_ids]
        existing = ms.refund_excess.get(t.txn_id)
        if existing is None:
            ms.refund_excess[t.txn_id] = self.out.open(
                "REFUND_ANOMALY",
                self.cfg,
                (t.merchant_id, t.txn_id, "EXCEEDS_ORIGINAL"),
                merchant_id=t.merchant_id,
                terminal_id=t.terminal_id,
                txn_ids=txn_ids,
                settlement_ids=[],
                ts=ts,
                summary=summary,
                details=details,
            )
        elif existing.txn_ids != txn_ids or existing.details != {**existing.details, **details}:
            ms.refund_excess[t.txn_id] = self.out.update(
                existing, ts, summary=summary, txn_ids=txn_ids, details=details
            )


def _original_problem(original: TxnState | None, currency: str) -> str | None:
    """Why ``original`` cannot back a refund, or None when it can."""
    if original is None:
        return "a transaction this merchant never had"
    o = original.txn
    if o.type != "SALE":
        return f"a {o.type}, not a sale"
    if o.status != "APPROVED":
        return f"a {o.status} sale"
    if o.currency != currency:
        return f"a sale in {o.currency}, not {currency}"
    return None
