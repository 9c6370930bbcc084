"""The rules that read nothing but the ledger's derived stream of transactions: terminal health,
duplicate charges and card velocity.

The ledger (``core.py``) decides which transactions are new, which sales stand and which a VOID or
REVERSAL cancelled; these rules consume what it decided, in its order, through ``Offload``'s calls
(accepted transaction, standing sale, approved sale, cancellation, sweep) and keep state of their
own. One class, wherever they run: inline in the engine (``LocalRules``), in replay's second
process (``streams/replay_sidecar.py``), or split, with card velocity behind the worker's
repartition by card (``RoutedRules``, ``streams/worker/cards.py``). The model (features and
score, ``patterns.py``) reads the same stream and runs beside them.
"""

from __future__ import annotations

from models.scorer import Scorer
from streams.config import Config
from streams.engine.duplicates import DuplicateCharges
from streams.engine.offload import Offload
from streams.engine.outbox import Outbox
from streams.engine.patterns import SuspiciousPatterns
from streams.engine.state import MerchantState, TxnState
from streams.engine.terminals import TerminalHealth
from streams.engine.velocity import Velocity
from streams.events import Feedback, Transaction


class TransactionRules:
    """Terminal health (``terminals``), duplicate charges (``duplicates``) and card velocity,
    over their own per-merchant state: terminal windows, and for duplicate charges the sale
    index, the clusters and the sales they name."""

    def __init__(self, config: Config, out: Outbox, terminals: bool, duplicates: bool) -> None:
        self.config = config
        self.run_terminals = terminals
        self.run_duplicates = duplicates
        self.terminals = TerminalHealth(config, out)
        self.velocity = Velocity(config, out)
        self.duplicates = DuplicateCharges(config, out)
        self.merchants: dict[str, MerchantState] = {}

    def _merchant(self, t: Transaction) -> MerchantState:
        ms = self.merchants.get(t.merchant_id)
        if ms is None:
            ms = self.merchants[t.merchant_id] = MerchantState()
        return ms

    def attempt(self, t: Transaction) -> None:
        """Every transaction the ledger accepted."""
        if self.run_terminals:
            self.terminals.on_attempt(self._merchant(t), t)

    def sale(self, t: Transaction) -> None:
        """An approved sale nothing has cancelled."""
        ms = self._merchant(t)
        st = ms.txns[t.txn_id] = TxnState(t)
        self.duplicates.on_sale(ms, st)

    def card_sale(self, t: Transaction) -> None:
        """An approved sale (card velocity)."""
        self.velocity.on_card_sale(t.ts, t.card_token, t.merchant_id, t.txn_id)

    def cancel(self, by: Transaction) -> None:
        """``by``, an approved VOID/REVERSAL, cancelled its original, an approved sale or refund
        accepted before it and not cancelled yet (only sales are kept here)."""
        assert by.original_txn_id is not None
        ms = self._merchant(by)
        st = ms.txns.get(by.original_txn_id)
        if st is None:  # not a sale duplicate charges still reads: in no cluster
            return
        st.cancelled_by = by.txn_id
        self.duplicates.on_cancel(ms, st, max(by.ts, st.txn.ts))

    def sweep(self, tw: int) -> None:
        """The hourly sweep at transaction watermark ``tw``: short-lived windows, and the sales
        duplicate charges can no longer read (out of the sale index and of every cluster that is
        not past retention)."""
        cfg = self.config
        self.velocity.expire(tw - cfg.velocity.window_us)
        term_before = tw - cfg.terminal_fault.window_us
        dup_before = tw - cfg.duplicate_charge.window_us
        horizon = tw - cfg.retention_us
        for ms in self.merchants.values():
            if self.run_terminals:
                TerminalHealth.expire(ms, term_before)
            if not self.run_duplicates:
                continue
            DuplicateCharges.expire(ms, dup_before)
            txns = ms.txns
            if not txns:
                continue
            clusters = ms.clusters
            if clusters:
                for txn_id in [k for k in clusters if txns[k].txn.ts < horizon]:
                    del clusters[txn_id]
            # Built from what is still named (a few minutes of sales), not filtered from the
            # hour of sales since the last sweep.
            kept = {k: txns[k] for k in clusters}
            for recent in ms.sale_index.values():
                for _, txn_id in recent:
                    kept[txn_id] = txns[txn_id]
            ms.txns = kept


class LocalRules(Offload):
    """The transaction-only rules and the model run in the engine itself, alerts in the engine's
    outbox."""

    def __init__(self, config: Config, out: Outbox, scorer: Scorer | None = None) -> None:
        self.rules = TransactionRules(config, out, terminals=True, duplicates=True)
        self.out = out
        self.model = SuspiciousPatterns(config.suspicious_pattern, out, scorer is not None)
        self.model.set_scorer(scorer)
        self.patterns = self.model

    def retime(self, t: Transaction) -> None:
        pass  # the rules read ``t.ts`` as they get it

    def attempt(self, t: Transaction) -> None:
        self.rules.attempt(t)

    def sale(self, t: Transaction) -> None:
        self.rules.sale(t)

    def card_sale(self, t: Transaction) -> None:
        self.rules.card_sale(t)

    def cancel(self, by: Transaction) -> None:
        self.rules.cancel(by)

    def sweep(self, tw: int) -> None:
        self.rules.sweep(tw)

    def on_transaction(self, t: Transaction) -> None:
        model = self.model
        if model.track:
            model.on_transaction(t)

    def expire(self, now: int) -> None:
        self.model.expire(now)

    def outcome(self, sale: Transaction, feedback: Feedback) -> None:
        model = self.model
        if model.track:
            model.on_outcome(sale, feedback)


class RoutedRules(LocalRules):
    """``LocalRules`` with card velocity elsewhere: approved sales are handed over in
    ``out.sales`` for the stream worker's repartition by card, where that rule reads every
    partition's sales of a card."""

    def card_sale(self, t: Transaction) -> None:
        self.out.sales.append(t)
