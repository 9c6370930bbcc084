"""Per-sale features for the isolation forest, computed from state kept on event time.

``FeatureTracker`` sees every transaction (in the engine's event-time order) and, for each approved
SALE, returns the feature row *before* that sale is folded into the state, so "usual" never
includes the sale being judged. Replay, training and the worker all run it inside the engine, so
they compute identical rows for identical input. No wall clock, no randomness.

State is bounded: merchants and terminals keep a few numbers each; cards keep their last ten
minutes of sales and last hour of declines, and are forgotten a month after their last use
(``expire``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from models.feature_state import FeatureState, OutcomeRows
from models.outcomes import NO_FRAUD_DAYS, RATE_DAYS, OutcomeHistory, SalesByDay

FEATURE_NAMES: Final = (
    "amount_vs_merchant",
    "amount_vs_terminal",
    "local_hour",
    "day_of_week",
    "hour_rarity",
    "card_sales_10m",
    "card_merchants_10m",
    "card_declines_1h",
    "terminal_attempts_10m",
    "round_amount",
    "entry_risk",
    "channel_qr",
    "merchant_refund_ratio",
    "merchant_decline_ratio",
    "log_seconds_since_card_sale",
    "amount_vs_card",
    "log_amount",
    "card_amount_zscore",
    "terminal_frauds_1d",
    "terminal_frauds_7d",
    "terminal_frauds_28d",
    "terminal_fraud_rate_28d",
    "days_since_terminal_fraud",
    "merchant_frauds_7d",
    "merchant_fraud_rate_28d",
    "days_since_merchant_fraud",
    "card_frauds_28d",
)
"""Feature order of every row; a model file records the order it was trained with."""

MINUTE_US: Final = 60_000_000
SHORT_WINDOW_US: Final = 10 * MINUTE_US
DECLINE_WINDOW_US: Final = 60 * MINUTE_US
CARD_MEMORY_US: Final = 30 * 24 * 60 * MINUTE_US
NEVER_SEEN_SECONDS: Final = 30 * 24 * 3600
# Exponentially weighted averages settle over ~1/ALPHA observations; the first ones are plain
# means (weight 1/n) so a new merchant is judged against its own first sales, not against zero.
ALPHA: Final = 0.02
ENTRY_RISK: Final = {"CHIP": 0.0, "CONTACTLESS": 0.0, "QR": 0.0, "SWIPE": 1.0, "KEYED": 2.0}
UNKNOWN_ENTRY_RISK: Final = 0.5
_LN_10: Final = math.log(10)
_VAR_FLOOR: Final = 0.01
"""Added to a card's log-amount variance: a card that always spends the same is not infinitely
surprised by a cent more (a tenth in log terms is one standard deviation)."""


def _ewma(current: float, value: float, n: int) -> float:
    """The running average after its ``n``-th value. ``FeatureTracker.on_transaction`` writes
    this out inline on its per-sale path, with the same arithmetic."""
    return current + (value - current) * max(1.0 / n, ALPHA)


@dataclass(slots=True)
class AmountProfile:
    """Typical amount as the exponentially weighted mean of log amounts (a geometric mean that
    forgets slowly): a sale's feature is ``log(amount / typical)``, 0 before anything is known."""

    n: int = 0
    log_mean: float = 0.0


@dataclass(slots=True)
class MerchantProfile:
    amounts: AmountProfile = field(default_factory=AmountProfile)
    hours: list[int] = field(default_factory=lambda: [0] * 24)
    sales: int = 0
    attempts: int = 0
    refund_ratio: float = 0.0
    decline_ratio: float = 0.0
    sales_by_day: SalesByDay = field(default_factory=SalesByDay)
    outcomes: OutcomeHistory | None = None


@dataclass(slots=True)
class TerminalProfile:
    amounts: AmountProfile = field(default_factory=AmountProfile)
    attempts: deque[int] = field(default_factory=deque)
    sales_by_day: SalesByDay = field(default_factory=SalesByDay)
    outcomes: OutcomeHistory | None = None


@dataclass(slots=True)
class CardProfile:
    sales: deque[tuple[int, str]] = field(default_factory=deque)  # (ts, merchant), 10 min
    declines: deque[int] = field(default_factory=deque)  # ts, 1 h
    last_sale: int | None = None
    last_seen: int = 0
    amounts: AmountProfile = field(default_factory=AmountProfile)
    """The card's own typical sale: a stolen card spends unlike its owner, wherever it is used."""
    outcomes: OutcomeHistory | None = None
    log_var: float = 0.0
    """How much the card's log amounts vary around ``amounts`` (weighted like its mean): five
    times the usual is nothing for a card that spends anything, a lot for one that never does."""


class SaleContext(NamedTuple):
    """What was usual when a sale was judged, for explanations. Kept as the raw running
    numbers (a tuple is cheap to make for every sale); the typical amounts are worked out only
    when an alert asks for them."""

    merchant_sales: int
    merchant_log_mean: float
    terminal_sales: int
    terminal_log_mean: float
    merchant_hour_share: float
    previous_card_sale_us: int | None
    card_sales: int = 0
    card_log_mean: float = 0.0
    terminal_sales_28d: int = 0
    merchant_sales_28d: int = 0

    @property
    def merchant_typical_minor(self) -> int | None:
        return _typical(self.merchant_sales, self.merchant_log_mean)

    @property
    def terminal_typical_minor(self) -> int | None:
        return _typical(self.terminal_sales, self.terminal_log_mean)

    @property
    def card_typical_minor(self) -> int | None:
        return _typical(self.card_sales, self.card_log_mean)


def _typical(n: int, log_mean: float) -> int | None:
    """An ``AmountProfile``'s typical amount, from its numbers."""
    return None if n == 0 else round(math.exp(log_mean))


def round_amount(amount_minor: int, exponent: int) -> float:
    """0 when the amount has a fractional part in major units; otherwise 1 + the number of
    trailing zeros of the major amount (5.00 -> 1, 50.00 -> 2, 48,000.00 -> 4)."""
    scale = 10**exponent
    if amount_minor % scale:
        return 0.0
    major, zeros = amount_minor // scale, 0
    while major and major % 10 == 0 and zeros < 8:
        major //= 10
        zeros += 1
    return float(1 + zeros)


class FeatureTracker:
    """Event-time state behind the features, for every merchant, terminal and card."""

    def __init__(self) -> None:
        self.merchants: dict[str, MerchantProfile] = {}
        self.terminals: dict[str, TerminalProfile] = {}
        self.cards: dict[str, CardProfile] = {}

    def on_transaction(
        self,
        *,
        ts: int,
        merchant_id: str,
        terminal_id: str,
        card_token: str,
        kind: str,
        status: str,
        amount_minor: int,
        currency_exponent: int,
        channel: str,
        entry_mode: str | None,
        local_hour: float,
        day_of_week: int,
    ) -> tuple[list[float], SaleContext] | None:
        """Fold one transaction into the state; for an approved SALE, first return its row.

        This runs for every transaction, so the running averages (``_ewma``'s arithmetic) are
        updated inline rather than through calls: on this path a call costs as much as the
        arithmetic it wraps.
        """
        merchant, terminal = self._profiles(merchant_id, terminal_id)
        card = self.cards.get(card_token)
        if card is None:
            card = self.cards[card_token] = CardProfile()
        if ts > card.last_seen:  # noqa: PLR1730 (max() is a builtin call; this runs per event)
            card.last_seen = ts

        attempts = terminal.attempts
        attempts.append(ts)
        while attempts and attempts[0] <= ts - SHORT_WINDOW_US:
            attempts.popleft()
        if kind == "SALE":
            n = merchant.attempts = merchant.attempts + 1
            weight = 1.0 / n
            weight = ALPHA if weight < ALPHA else weight
            current = merchant.decline_ratio
            if status == "APPROVED":
                merchant.decline_ratio = current + (0.0 - current) * weight
            else:
                merchant.decline_ratio = current + (1.0 - current) * weight
                if status == "DECLINED":
                    card.declines.append(ts)
                return None
        else:
            if kind == "REFUND" and status == "APPROVED" and merchant.sales:
                merchant.refund_ratio = _ewma(merchant.refund_ratio, 1.0, merchant.sales)
            return None

        # An approved sale.
        sales = card.sales
        while sales and sales[0][0] <= ts - SHORT_WINDOW_US:
            sales.popleft()
        declines = card.declines
        while declines and declines[0] <= ts - DECLINE_WINDOW_US:
            declines.popleft()
        hour = int(local_hour) % 24
        hours = merchant.hours
        share = (hours[hour] + 1) / (merchant.sales + 24)  # smoothed: +1 per hour
        previous = card.last_sale
        since = NEVER_SEEN_SECONDS if previous is None else max(0, ts - previous) / 1e6
        log_amount = math.log(amount_minor)
        m_amounts, t_amounts, c_amounts = merchant.amounts, terminal.amounts, card.amounts
        m_n, m_mean, t_n, t_mean = m_amounts.n, m_amounts.log_mean, t_amounts.n, t_amounts.log_mean
        c_n, c_mean = c_amounts.n, c_amounts.log_mean
        merchants_10m = float(len({m for _, m in sales} | {merchant_id})) if sales else 1.0
        t_days, m_days = terminal.sales_by_day, merchant.sales_by_day
        t_outcomes, m_outcomes, c_outcomes = terminal.outcomes, merchant.outcomes, card.outcomes
        t_sales = m_sales = 0
        if t_outcomes is None:
            t_risk = _NO_RISK
        else:
            t_sales = t_days.count_upto(ts, RATE_DAYS)
            t_frauds = t_outcomes.count(ts, RATE_DAYS)
            t_risk = (
                float(t_outcomes.count(ts, 1)),
                float(t_outcomes.count(ts, 7)),
                float(t_frauds),
                t_frauds / (t_sales if t_sales > 1 else 1),
                t_outcomes.days_since(ts),
            )
        if m_outcomes is None:
            m_risk = _NO_MERCHANT_RISK
        else:
            m_sales = m_days.count_upto(ts, RATE_DAYS)
            m_risk = (
                float(m_outcomes.count(ts, 7)),
                m_outcomes.count(ts, RATE_DAYS) / (m_sales if m_sales > 1 else 1),
                m_outcomes.days_since(ts),
            )
        row = [
            0.0 if m_n == 0 else log_amount - m_mean,
            0.0 if t_n == 0 else log_amount - t_mean,
            local_hour,
            float(day_of_week),
            -math.log(share * 24),
            float(len(sales) + 1),
            merchants_10m,
            float(len(declines)),
            float(len(attempts)),
            round_amount(amount_minor, currency_exponent),
            ENTRY_RISK.get(entry_mode, UNKNOWN_ENTRY_RISK) if entry_mode else UNKNOWN_ENTRY_RISK,
            1.0 if channel == "QR" else 0.0,
            merchant.refund_ratio,
            merchant.decline_ratio,
            math.log1p(min(since, NEVER_SEEN_SECONDS)),
            0.0 if c_n == 0 else log_amount - c_mean,
            log_amount - currency_exponent * _LN_10,
            0.0 if c_n < 2 else (log_amount - c_mean) / math.sqrt(card.log_var + _VAR_FLOOR),
            *t_risk,
            *m_risk,
            0.0 if c_outcomes is None else float(c_outcomes.count(ts, RATE_DAYS)),
        ]
        context = SaleContext(
            m_n, m_mean, t_n, t_mean, share, previous, c_n, c_mean, t_sales, m_sales
        )
        t_days.add(ts)
        m_days.add(ts)
        # Fold the sale in.
        m_n = m_amounts.n = m_n + 1
        weight = 1.0 / m_n
        m_amounts.log_mean = m_mean + (log_amount - m_mean) * (ALPHA if weight < ALPHA else weight)
        t_n = t_amounts.n = t_n + 1
        weight = 1.0 / t_n
        t_amounts.log_mean = t_mean + (log_amount - t_mean) * (ALPHA if weight < ALPHA else weight)
        c_n = c_amounts.n = c_n + 1
        weight = 1.0 / c_n
        weight = ALPHA if weight < ALPHA else weight
        deviation = log_amount - c_mean
        c_amounts.log_mean = c_mean + deviation * weight
        card.log_var = (1.0 - weight) * (card.log_var + weight * deviation * deviation)
        hours[hour] += 1
        n = merchant.sales = merchant.sales + 1
        weight = 1.0 / n
        current = merchant.refund_ratio
        merchant.refund_ratio = current + (0.0 - current) * (ALPHA if weight < ALPHA else weight)
        sales.append((ts, merchant_id))
        card.last_sale = ts if previous is None or ts > previous else previous
        return row, context

    def _profiles(
        self, merchant_id: str, terminal_id: str
    ) -> tuple[MerchantProfile, TerminalProfile]:
        merchant = self.merchants.get(merchant_id)
        if merchant is None:
            merchant = self.merchants[merchant_id] = MerchantProfile()
        terminal = self.terminals.get(terminal_id)
        if terminal is None:
            terminal = self.terminals[terminal_id] = TerminalProfile()
        return merchant, terminal

    def on_outcome(
        self,
        *,
        txn_id: str,
        merchant_id: str,
        terminal_id: str,
        card_token: str,
        known_at: int,
        fraud: bool,
    ) -> None:
        """An outcome about an approved sale, at its event time ``known_at`` (the engine hands
        it over in event-time order, after every sale made before it)."""
        merchant, terminal = self._profiles(merchant_id, terminal_id)
        card = self.cards.get(card_token)
        for holder in (merchant, terminal, card):
            if holder is None:
                continue
            history = holder.outcomes
            if history is None:
                if not fraud:
                    continue
                history = holder.outcomes = OutcomeHistory()
            history.record(txn_id, known_at, fraud)

    def state(self) -> FeatureState:
        return FeatureState(
            [
                (
                    key,
                    m.amounts.n,
                    m.amounts.log_mean,
                    m.hours,
                    m.sales,
                    m.attempts,
                    m.refund_ratio,
                    m.decline_ratio,
                    m.sales_by_day.rows(),
                    _outcome_rows(m.outcomes),
                )
                for key, m in self.merchants.items()
            ],
            [
                (
                    key,
                    t.amounts.n,
                    t.amounts.log_mean,
                    list(t.attempts),
                    t.sales_by_day.rows(),
                    _outcome_rows(t.outcomes),
                )
                for key, t in self.terminals.items()
            ],
            [
                (
                    key,
                    list(c.sales),
                    list(c.declines),
                    c.last_sale,
                    c.last_seen,
                    c.amounts.n,
                    c.amounts.log_mean,
                    _outcome_rows(c.outcomes),
                    c.log_var,
                )
                for key, c in self.cards.items()
            ],
        )

    def load_state(self, state: FeatureState) -> None:
        """Take over ``state`` (a fresh tracker)."""
        self.merchants = {
            m[0]: MerchantProfile(
                AmountProfile(m[1], m[2]),
                m[3],
                m[4],
                m[5],
                m[6],
                m[7],
                SalesByDay(m[8]),
                _outcome_history(m[9]),
            )
            for m in state.merchants
        }
        self.terminals = {
            key: TerminalProfile(
                AmountProfile(n, log_mean), deque(attempts), SalesByDay(days), _outcome_history(o)
            )
            for key, n, log_mean, attempts, days, o in state.terminals
        }
        self.cards = {
            key: CardProfile(
                deque(sales),
                deque(declines),
                last_sale,
                last_seen,
                AmountProfile(n, log_mean),
                _outcome_history(o),
                log_var,
            )
            for key, sales, declines, last_sale, last_seen, n, log_mean, o, log_var in state.cards
        }

    def expire(self, now: int) -> None:
        """Forget cards unused for a month (their time-since-last-sale is capped there anyway),
        and confirmations older than the longest window."""
        cards = self.cards
        horizon = now - CARD_MEMORY_US
        for token in [t for t, c in cards.items() if c.last_seen < horizon]:
            del cards[token]
        holders: list[MerchantProfile | TerminalProfile | CardProfile] = []
        holders.extend(self.merchants.values())
        holders.extend(self.terminals.values())
        holders.extend(self.cards.values())
        for holder in holders:
            history = holder.outcomes
            if history is not None and history.expire(now):
                holder.outcomes = None


_NO_RISK: Final = (0.0, 0.0, 0.0, 0.0, NO_FRAUD_DAYS)
_NO_MERCHANT_RISK: Final = (0.0, 0.0, NO_FRAUD_DAYS)
OUTCOME_FEATURES: Final = FEATURE_NAMES[-9:]
"""The features that read outcomes; the rest never do."""
FOREST_FEATURES: Final = tuple(
    name
    for name in FEATURE_NAMES
    if name not in OUTCOME_FEATURES
    and name not in ("local_hour", "day_of_week", "merchant_refund_ratio", "merchant_decline_ratio")
)
"""What the isolation forest judges a sale by. Not the outcome features (a fleet without
outcomes has none, and with outcomes the supervised model learns from them), nor the sale's bare
hour and weekday (a Sunday sale is not strange; how rare its hour is for the merchant is kept) or
the merchant's refund and decline ratios (they describe the merchant, not the sale): in an
isolation forest every feature without signal dilutes the ones with it."""
NO_OUTCOMES: Final = (0.0, 0.0, 0.0, 0.0, NO_FRAUD_DAYS, 0.0, 0.0, NO_FRAUD_DAYS, 0.0)
"""Their values while no outcome is known."""


def _outcome_rows(history: OutcomeHistory | None) -> OutcomeRows | None:
    if history is None:
        return None
    return (list(history.known), list(history.txns.items()), history.newest)


def _outcome_history(rows: OutcomeRows | None) -> OutcomeHistory | None:
    if rows is None:
        return None
    known, txns, newest = rows
    return OutcomeHistory(list(known), dict(txns), newest)
