"""The ledger's derived stream, as calls: where the engine hands what it decided about each
transaction to the rules that read nothing else.

Terminal health, card velocity and duplicate charges read nothing but the transactions themselves
(and which sales were cancelled), and the model's features and scores read nothing else either;
nothing they decide feeds back into the other rules. ``streams/engine/txn_rules.py`` runs them in
the engine (``LocalRules``, or ``RoutedRules`` with card velocity behind the worker's repartition
by card); replay hands them to a second process (``streams.replay_sidecar``). The engine is given
the one its driver wants and knows nothing else about where they run.
A base class rather than a ``Protocol``: compiled, its methods are called through a vtable, not
looked up by name per event.
"""

from __future__ import annotations

from streams.engine.patterns import SuspiciousPatterns
from streams.events import Feedback, Transaction


class Offload:
    """Every method is one element of the derived stream, in the ledger's order."""

    patterns: SuspiciousPatterns | None
    """The model, when it runs in this process (``Engine.patterns``)."""

    def retime(self, t: Transaction) -> None:
        """The partition's clock gave ``t`` another time than its own (``t.ts``, already set)."""
        raise NotImplementedError

    def attempt(self, t: Transaction) -> None:
        """Every new transaction (terminal health, when it runs here)."""
        raise NotImplementedError

    def sale(self, t: Transaction) -> None:
        """Duplicate charges, for every new approved sale nothing has cancelled."""
        raise NotImplementedError

    def card_sale(self, t: Transaction) -> None:
        """Card velocity, for every new approved sale."""
        raise NotImplementedError

    def cancel(self, by: Transaction) -> None:
        """Duplicate charges, when ``by`` (an approved VOID/REVERSAL being accepted) cancels its
        original, a transaction accepted earlier."""
        raise NotImplementedError

    def sweep(self, tw: int) -> None:
        """The hourly sweep of short-lived state, at transaction watermark ``tw``."""
        raise NotImplementedError

    def on_transaction(self, t: Transaction) -> None:
        """The model (features and score), for every new transaction."""
        raise NotImplementedError

    def expire(self, now: int) -> None:
        """The daily sweep of the model's feature state."""
        raise NotImplementedError

    def outcome(self, sale: Transaction, feedback: Feedback) -> None:
        """The model's features, for an outcome about an approved sale accepted earlier."""
        raise NotImplementedError
