"""The outcomes (feedback) a partition has accepted: what makes a redelivery a no-op and a changed
outcome a conflict, and outcomes that arrived before the sale they are about.

An outcome is about a sale the ledger holds; the model's features learn it at once
(``Offload.outcome``). One whose sale has not been seen (its clock is wrong, or it is still on its
way) waits here for it, for as long as evidence is retained.
"""

from __future__ import annotations

from streams.engine.offload import Offload
from streams.engine.order import same_content
from streams.engine.outbox import Outbox
from streams.engine.state import MerchantState
from streams.events import Feedback, Transaction


class Outcomes:
    """Accepted outcomes by ``feedback_id``, in the order they were accepted."""

    def __init__(self, merchants: dict[str, MerchantState], offload: Offload, out: Outbox) -> None:
        self.merchants = merchants
        self.offload = offload
        self.out = out
        self.known: dict[str, Feedback] = {}
        self.waiting: dict[str, list[Feedback]] = {}
        """By ``txn_id``: outcomes about a sale not seen yet."""
        self.accepted = 0
        self.redeliveries = 0

    def on_feedback(self, f: Feedback) -> None:
        known = self.known.get(f.feedback_id)
        if known is not None:
            if same_content(known, f):
                self.redeliveries += 1
            else:
                self.out.reject(
                    f,
                    "CONFLICT",
                    f"feedback_id {f.feedback_id} was already seen with different content; "
                    "the first version is kept",
                )
            return
        self.accepted += 1
        self.known[f.feedback_id] = f
        ms = self.merchants.get(f.merchant_id)
        st = None if ms is None else ms.txns.get(f.txn_id)
        if st is None:
            self.waiting.setdefault(f.txn_id, []).append(f)
        else:
            self._learn(st.txn, f)

    def sale_seen(self, t: Transaction) -> None:
        """``t`` was accepted: the outcomes that waited for it are learnt now."""
        waiting = self.waiting.pop(t.txn_id, None)
        if waiting is not None:
            for f in waiting:
                if f.merchant_id == t.merchant_id:
                    self._learn(t, f)

    def _learn(self, t: Transaction, f: Feedback) -> None:
        if t.type == "SALE" and t.status == "APPROVED":
            self.offload.outcome(t, f)

    def expire(self, horizon: int) -> None:
        """Forget outcomes known before ``horizon`` (the engine's retention), and stop waiting
        for their sales."""
        known = self.known
        while known:
            first = next(iter(known.values()))
            if first.at >= horizon:
                break
            del known[first.feedback_id]
        if self.waiting:
            self.waiting = {
                txn_id: kept
                for txn_id, outcomes in self.waiting.items()
                if (kept := [f for f in outcomes if f.at >= horizon])
            }
