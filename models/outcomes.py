"""What the outcomes known so far say about a terminal, a merchant or a card (compiled).


A compromised terminal's sales look like its customers' ordinary sales: nothing in them tells
fraud apart until confirmations come back from issuers and operators. Once some have, the next
sales on that terminal are likelier to be fraud too. ``OutcomeHistory`` keeps, for one terminal,
merchant or card, when each confirmation of fraud on one of its sales became known (``known_at``,
the feedback's event time), so a feature counts only what was known at the sale's time: the
outcomes of the future never leak into a row, in replay, training or the stream.

A sale confirmed twice (a confirmation, then its chargeback) counts once, from the first; a later
``LEGITIMATE`` for it takes it back. ``SalesByDay`` counts a terminal's or merchant's sales per UTC
day, for fraud rates.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import deque
from typing import Final

DAY_US: Final = 86_400_000_000
RATE_DAYS: Final = 28
"""The longest window a feature reads; confirmations known longer ago are forgotten, except the
newest one's time."""
NO_FRAUD_DAYS: Final = 365.0
"""Days since the newest confirmation when there is none (or it is older)."""


class OutcomeHistory:
    """Fraud confirmations about one terminal's, merchant's or card's sales."""

    __slots__ = ("known", "newest", "txns")

    def __init__(
        self, known: list[int] | None = None, txns: dict[str, int] | None = None, newest: int = 0
    ) -> None:
        self.known: list[int] = known if known is not None else []
        """``known_at`` of each counted confirmation, ascending."""
        self.txns: dict[str, int] = txns if txns is not None else {}
        """The sales counted, with the ``known_at`` they are counted at."""
        self.newest = newest
        """The newest ``known_at`` ever counted (kept after the window forgets it)."""

    def record(self, txn_id: str, known_at: int, fraud: bool) -> None:
        """An outcome about one of the sales, known at ``known_at``."""
        counted = self.txns.get(txn_id)
        if fraud:
            if counted is None:
                self.txns[txn_id] = known_at
                insort(self.known, known_at)
                self.newest = max(self.newest, known_at)
            return
        if counted is not None:  # found legitimate after all
            del self.txns[txn_id]
            known = self.known
            i = bisect_right(known, counted) - 1
            if i >= 0 and known[i] == counted:
                del known[i]

    def count(self, now: int, days: int) -> int:
        """Confirmations known in the ``days`` days up to ``now`` (later ones are not known yet)."""
        known = self.known
        return bisect_right(known, now) - bisect_right(known, now - days * DAY_US)

    def days_since(self, now: int) -> float:
        """Days since the newest confirmation known at ``now``."""
        known = self.known
        k = bisect_right(known, now)
        newest = known[k - 1] if k else (self.newest if self.newest <= now else 0)
        if newest <= 0:
            return NO_FRAUD_DAYS
        days = (now - newest) / DAY_US
        return days if days < NO_FRAUD_DAYS else NO_FRAUD_DAYS

    def expire(self, now: int) -> bool:
        """Forget confirmations older than the longest window; True when nothing is left to
        tell (the newest is older than ``NO_FRAUD_DAYS``)."""
        horizon = now - RATE_DAYS * DAY_US
        known = self.known
        cut = bisect_right(known, horizon)
        if cut:
            del known[:cut]
            self.txns = {t: k for t, k in self.txns.items() if k > horizon}
        return not known and now - self.newest > NO_FRAUD_DAYS * DAY_US


class SalesByDay:
    """Sales per UTC day over the last ``RATE_DAYS`` days: today's as plain numbers (a sale costs
    a comparison and an increment), earlier days' in a short queue."""

    __slots__ = ("count", "day", "past")

    def __init__(self, days: list[tuple[int, int]] | None = None) -> None:
        self.day = -1
        self.count = 0
        self.past: deque[tuple[int, int]] = deque()
        for day, n in days or ():
            if self.day >= 0:
                self.past.append((self.day, self.count))
            self.day, self.count = day, n

    def add(self, ts: int) -> None:
        day = ts // DAY_US
        if day <= self.day:  # today, or a late sale: counted on the newest day kept
            self.count += 1
            return
        past = self.past
        if self.day >= 0:
            past.append((self.day, self.count))
        self.day, self.count = day, 1
        while past and past[0][0] <= day - RATE_DAYS:
            past.popleft()

    def count_upto(self, now: int, days_back: int) -> int:
        """Sales on the ``days_back`` UTC days up to and including ``now``'s."""
        first = now // DAY_US - days_back + 1
        total = self.count if self.day >= first else 0
        for day, n in reversed(self.past):
            if day < first:
                break
            total += n
        return total

    def rows(self) -> list[tuple[int, int]]:
        rows = list(self.past)
        if self.day >= 0:
            rows.append((self.day, self.count))
        return rows
