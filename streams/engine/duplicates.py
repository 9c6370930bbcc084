"""DUPLICATE_CHARGE: the same card charged the same amount twice at one merchant within minutes."""

from __future__ import annotations

from typing import Any, Final

from streams.config import Config
from streams.engine.describe import txn_evidence
from streams.engine.outbox import Outbox
from streams.engine.state import DuplicateCluster, MerchantState, TxnState
from streams.money import format_amount
from streams.timefmt import describe_duration

# A terminal replaying one charge thousands of times makes one cluster of thousands: its alert
# must still fit a Kafka message (and each update must not cost its size again). Beyond these,
# the alert names the first ones and says how many more there are.
_IDS_MAX: Final = 1000
_EVIDENCE_MAX: Final = 100
_NAMED_MAX: Final = 10


def _named(ids: list[str]) -> str:
    if len(ids) <= _NAMED_MAX:
        return ", ".join(ids)
    return f"{', '.join(ids[:_NAMED_MAX])} and {len(ids) - _NAMED_MAX} more"


def _evidence(ms: MerchantState, members: list[str]) -> dict[str, Any]:
    """The members' transactions as evidence, the first ``_EVIDENCE_MAX`` of them."""
    shown = members[:_EVIDENCE_MAX]
    evidence: dict[str, Any] = {"transactions": [txn_evidence(ms.txns[m].txn) for m in shown]}
    if len(members) > len(shown):
        evidence["transactions_omitted"] = len(members) - len(shown)
    return evidence


class DuplicateCharges:
    """Clusters approved, uncancelled SALEs with equal card, amount and currency.

    A cluster raises one alert (its id from the earliest sale) that grows when more copies join and
    resolves once at most one uncancelled sale is left, e.g. after the cashier voids the copy.
    """

    def __init__(self, config: Config, out: Outbox) -> None:
        self.cfg = config.duplicate_charge
        self.out = out

    def on_sale(self, ms: MerchantState, st: TxnState) -> None:
        """``st`` is an approved SALE that nothing has cancelled."""
        if not self.cfg.enabled:
            return
        t = st.txn
        key = (t.card_token, t.amount_minor, t.currency)
        index = ms.sale_index
        recent = index.get(key)
        if recent is None:  # the usual case
            index[key] = [(t.ts, t.txn_id)]
            return
        window = self.cfg.window_us
        recent[:] = [entry for entry in recent if entry[0] >= t.ts - window]
        matches = [
            txn_id
            for ts, txn_id in recent
            if abs(ts - t.ts) <= window and ms.txns[txn_id].cancelled_by is None
        ]
        recent.append((t.ts, t.txn_id))
        if not matches:
            return
        cluster = next((ms.clusters[m] for m in matches if m in ms.clusters), None)
        if cluster is None:
            members = [*sorted(matches, key=lambda m: (ms.txns[m].txn.ts, m)), t.txn_id]
            first = ms.txns[members[0]].txn
            gap = t.ts - first.ts
            summary = (
                f"Card {t.card_token} was charged {format_amount(t.amount_minor, t.currency)} "
                f"{len(members)} times within {describe_duration(gap)} at merchant {t.merchant_id} "
                f"({_named(members)}): void the extra charge or refund the customer."
            )
            alert = self.out.open(
                "DUPLICATE_CHARGE",
                self.cfg,
                (t.merchant_id, first.txn_id),
                merchant_id=t.merchant_id,
                terminal_id=t.terminal_id,
                txn_ids=members[:_IDS_MAX],
                settlement_ids=[],
                ts=t.ts,
                summary=summary,
                details={
                    "card_token": t.card_token,
                    "amount_minor": t.amount_minor,
                    "currency": t.currency,
                    "window_seconds": window // 1_000_000,
                    **_evidence(ms, members),
                },
            )
            # Its own list: the alert event just emitted keeps the members it was raised with.
            cluster = DuplicateCluster(list(members), alert)
            for m in members:
                ms.clusters[m] = cluster
            return
        cluster.members.append(t.txn_id)
        ms.clusters[t.txn_id] = cluster
        cluster.alert = self.out.update(
            cluster.alert,
            t.ts,
            status="OPEN",
            summary=(
                f"Card {t.card_token} was charged {format_amount(t.amount_minor, t.currency)} "
                f"{len(cluster.members)} times at merchant {t.merchant_id} "
                f"({_named(cluster.members)}): void the extra charges or refund the customer."
            ),
            txn_ids=cluster.members[:_IDS_MAX],
            details=_evidence(ms, cluster.members),
        )

    @staticmethod
    def expire(ms: MerchantState, before: int) -> None:
        """Forget index entries of card and amount with no sale since ``before``."""
        index = ms.sale_index
        for key in [k for k, recent in index.items() if recent[-1][0] < before]:
            del index[key]

    def on_cancel(self, ms: MerchantState, st: TxnState, ts: int) -> None:
        """``st`` was just cancelled by an approved VOID/REVERSAL."""
        cluster = ms.clusters.get(st.txn.txn_id)
        if cluster is None or cluster.alert.status != "OPEN":
            return
        live = [m for m in cluster.members if ms.txns[m].cancelled_by is None]
        if len(live) > 1:
            return
        cancelled = [m for m in cluster.members if m not in live]
        cluster.alert = self.out.resolve(
            cluster.alert,
            ts,
            f"Duplicate charge resolved: {_named(cancelled)} cancelled by "
            f"{st.cancelled_by}; {_named(live) or 'no sale'} stands.",
            resolved_by=st.cancelled_by,
        )
