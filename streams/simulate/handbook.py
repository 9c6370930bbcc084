"""The transaction simulator of the fraud-detection handbook, written from its published
description: Le Borgne, Siblini, Lebichot, Bontempi, "Reproducible Machine Learning for Credit
Card Fraud Detection - Practical Handbook" (2022), chapter 3.2, "Transaction data simulator".

An outside benchmark for posguard's model: nothing here knows posguard's features or rules.

- Customers at random places on a 100 x 100 grid, each with a mean amount U(5, 100), a standard
  deviation of half that, and a mean number of transactions per day U(0, 4).
- Terminals at random places on the same grid; a customer uses the terminals within radius 5.
- Each day a customer makes Poisson(mean) transactions, at a time N(noon, 20,000 s) (kept when
  inside the day), of an amount N(mean, std) (a negative draw is redrawn U(0, 2 x mean)),
  rounded to cents, at one of its terminals chosen uniformly.
- Frauds, in this order (a later kind takes over the label of an earlier one):
  1. every amount above 220 is fraud;
  2. each day, 2 terminals are compromised for 28 days: all their transactions are fraud;
  3. each day, 3 customers (cards) are compromised for 14 days: a third of their transactions
     have their amount multiplied by 5 and are fraud.

Seeds follow the handbook's: customer and terminal profiles from ``seed``, each customer's
transactions from its own id, each day's compromised terminals and cards from the day. The
published code draws with pandas' ``sample``; this draws with NumPy's generator of the same
seed, so figures match the handbook's in distribution, not transaction for transaction.

Posguard's events: one merchant per ``terminals_per_merchant`` terminals (1: one merchant per
terminal, the handbook's view), a card token per customer, amounts in euro cents.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import msgspec
import numpy as np

AMOUNT_LIMIT: Final = 220.0
TERMINAL_DAYS: Final = 28
CARD_DAYS: Final = 14
KINDS: Final = ("genuine", "amount_over_limit", "compromised_terminal", "compromised_card")


@dataclass(frozen=True)
class HandbookSettings:
    customers: int = 5000
    terminals: int = 10000
    days: int = 183
    start: str = "2018-04-01"
    radius: float = 5.0
    seed: int = 0
    terminals_per_merchant: int = 1


@dataclass(frozen=True)
class HandbookTransactions:
    """Column arrays, one entry per transaction, in time order."""

    seconds: np.ndarray  # since ``start``
    day: np.ndarray
    customer: np.ndarray
    terminal: np.ndarray
    cents: np.ndarray
    kind: np.ndarray  # index into KINDS (0: genuine)

    @property
    def fraud(self) -> np.ndarray:
        return self.kind > 0


def _customer_transactions(
    customer: int,
    mean_amount: float,
    std_amount: float,
    per_day: float,
    terminals: np.ndarray,
    days: int,
) -> list[tuple[int, int, int, int, float]]:
    np_rng = np.random.RandomState(customer)
    rng = random.Random(customer)
    out: list[tuple[int, int, int, int, float]] = []
    for day in range(days):
        for _ in range(np_rng.poisson(per_day)):
            time_tx = int(np_rng.normal(86400 / 2, 20000))
            if 0 < time_tx < 86400:
                amount = np_rng.normal(mean_amount, std_amount)
                if amount < 0:
                    amount = np_rng.uniform(0, mean_amount * 2)
                amount = round(float(amount), 2)
                if len(terminals) > 0:
                    terminal = int(terminals[rng.randrange(len(terminals))])
                    out.append((time_tx + day * 86400, day, customer, terminal, amount))
    return out


def generate(settings: HandbookSettings) -> HandbookTransactions:
    """Profiles, transactions and frauds, deterministic per settings."""
    profile_rng = np.random.RandomState(settings.seed)
    n_c, n_t = settings.customers, settings.terminals
    cx, cy = profile_rng.uniform(0, 100, n_c), profile_rng.uniform(0, 100, n_c)
    mean_amount = profile_rng.uniform(5, 100, n_c)
    per_day = profile_rng.uniform(0, 4, n_c)
    terminal_rng = np.random.RandomState(settings.seed)
    tx, ty = terminal_rng.uniform(0, 100, n_t), terminal_rng.uniform(0, 100, n_t)
    rows: list[tuple[int, int, int, int, float]] = []
    for c in range(n_c):
        near = np.flatnonzero(np.hypot(tx - cx[c], ty - cy[c]) < settings.radius)
        rows.extend(
            _customer_transactions(
                c, float(mean_amount[c]), float(mean_amount[c]) / 2, float(per_day[c]), near,
                settings.days,
            )
        )  # fmt: skip
    rows.sort(key=lambda r: (r[0], r[2]))
    seconds = np.array([r[0] for r in rows], dtype=np.int64)
    day = np.array([r[1] for r in rows], dtype=np.int64)
    customer = np.array([r[2] for r in rows], dtype=np.int64)
    terminal = np.array([r[3] for r in rows], dtype=np.int64)
    amount = np.array([r[4] for r in rows], dtype=np.float64)
    kind = np.zeros(len(rows), dtype=np.int64)
    kind[amount > AMOUNT_LIMIT] = 1
    for d in range(settings.days):
        hit = np.random.RandomState(d).choice(n_t, size=min(2, n_t), replace=False)
        kind[(day >= d) & (day < d + TERMINAL_DAYS) & np.isin(terminal, hit)] = 2
    for d in range(settings.days):
        cards = np.random.RandomState(d).choice(n_c, size=min(3, n_c), replace=False)
        window = np.flatnonzero((day >= d) & (day < d + CARD_DAYS) & np.isin(customer, cards))
        chosen = random.Random(d).sample(list(window), k=len(window) // 3)
        amount[chosen] *= 5
        kind[chosen] = 3
    cents = np.maximum(np.round(amount * 100), 1).astype(np.int64)  # the contract wants > 0
    return HandbookTransactions(seconds, day, customer, terminal, cents, kind)


def write_transactions(
    data: HandbookTransactions, settings: HandbookSettings, path: Path, count: int | None = None
) -> list[str]:
    """The first ``count`` transactions (all by default) as posguard's JSON Lines; returns their
    ids, in file order."""
    start = datetime.fromisoformat(settings.start).replace(tzinfo=UTC)
    per = settings.terminals_per_merchant
    ids: list[str] = []
    encode = msgspec.json.encode
    with path.open("wb") as fh:
        for i in range(len(data.seconds) if count is None else count):
            terminal = int(data.terminal[i])
            merchant = f"HB{terminal // per:05d}"
            txn_id = f"HBT{i:08d}"
            ids.append(txn_id)
            moment = start + timedelta(seconds=int(data.seconds[i]))
            doc = {
                "txn_id": txn_id,
                "merchant_id": merchant,
                "terminal_id": f"{merchant}-T{terminal % per:04d}",
                "card_token": f"tok_hb{int(data.customer[i]):06d}",
                "type": "SALE",
                "status": "APPROVED",
                "amount_minor": int(data.cents[i]),
                "currency": "EUR",
                "channel": "CARD",
                "entry_mode": "CHIP",
                "event_time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            fh.write(encode(doc) + b"\n")
    return ids


FEEDBACK_DELAY_DAYS: Final = 7
"""The handbook's delay: a fraud is known a week after the sale (its "delay period")."""


def write_feedback(
    data: HandbookTransactions,
    settings: HandbookSettings,
    path: Path,
    count: int | None = None,
    delay_days: int = FEEDBACK_DELAY_DAYS,
) -> int:
    """A ``FRAUD_CONFIRMED`` outcome for every fraud among the first ``count`` transactions
    (``write_transactions``' ids), known ``delay_days`` after the sale, in the order they became
    known; returns how many."""
    start = datetime.fromisoformat(settings.start).replace(tzinfo=UTC)
    per = settings.terminals_per_merchant
    n = len(data.seconds) if count is None else count
    frauds = np.flatnonzero(data.kind[:n] > 0)
    known = data.seconds[frauds] + delay_days * 86_400
    encode = msgspec.json.encode
    with path.open("wb") as fh:
        for k in np.argsort(known, kind="stable"):
            i = int(frauds[k])
            moment = start + timedelta(seconds=int(known[k]))
            doc = {
                "feedback_id": f"HBF{i:08d}",
                "txn_id": f"HBT{i:08d}",
                "merchant_id": f"HB{int(data.terminal[i]) // per:05d}",
                "kind": "FRAUD_CONFIRMED",
                "known_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "source": "ISSUER",
            }
            fh.write(encode(doc) + b"\n")
    return len(frauds)
