"""SUSPICIOUS_PATTERN: approved sales the model finds unlike the fleet's traffic (the isolation
forest) or like the frauds confirmed so far (the gradient-boosted model).

Features come from ``models.features.FeatureTracker``, fed with every transaction and every
outcome in event-time order; each approved SALE is scored by ``models.scorer.Scorer`` when a model
is loaded. An alert carries the score, the threshold, the model's version and kind, and the three
features that moved the score most, in words, against what is usual for that merchant.

The scorer can be swapped while running (the worker reloads a new model file); features are
tracked whenever ``track`` is on, so a model loaded later judges with warm state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from models.features import FEATURE_NAMES, FeatureTracker, SaleContext
from models.outcomes import NO_FRAUD_DAYS
from models.scorer import Scorer
from streams.config import RuleConfig
from streams.engine.outbox import Outbox
from streams.events import Feedback, Transaction
from streams.money import exponent, format_amount
from streams.timefmt import describe_duration

_WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_ENTRY_WORDS: Final = {
    "KEYED": "card details keyed in by hand",
    "SWIPE": "magnetic-stripe swipe",
    "CHIP": "chip read",
    "CONTACTLESS": "contactless tap",
    "QR": "QR payment",
}


class SuspiciousPatterns:
    def __init__(self, rule: RuleConfig, out: Outbox, track: bool) -> None:
        self.rule = rule
        self.out = out
        self.track = track
        self.tracker = FeatureTracker()
        self.scorer: Scorer | None = None
        self._columns: list[int] | None = None
        """Where the model's features are in a row, when it reads other features or another
        order than ``FEATURE_NAMES`` (decided once per model)."""
        self.scored = 0
        # Called with every scored row (replay's evaluation and training read them).
        self.on_scored: Callable[[Transaction, list[float], float | None], None] | None = None

    def set_scorer(self, scorer: Scorer | None) -> None:
        if scorer is not None:
            missing = set(scorer.feature_names) - set(FEATURE_NAMES)
            if missing:
                raise ValueError(
                    f"model {scorer.version} needs features this posguard does not compute: "
                    f"{', '.join(sorted(missing))}"
                )
            self.track = True
            names = scorer.feature_names
            reordered = names != list(FEATURE_NAMES)
            self._columns = [FEATURE_NAMES.index(n) for n in names] if reordered else None
        self.scorer = scorer

    def observe(self, on_scored: Callable[[Transaction, list[float], float | None], None]) -> None:
        """Track features from now on and call ``on_scored`` with every row (and its score, with
        a model loaded)."""
        self.on_scored = on_scored
        self.track = True

    def on_transaction(self, t: Transaction) -> None:
        if not self.track:
            return
        moment = t.event_time
        result = self.tracker.on_transaction(
            ts=t.ts,
            merchant_id=t.merchant_id,
            terminal_id=t.terminal_id,
            card_token=t.card_token,
            kind=t.type,
            status=t.status,
            amount_minor=t.amount_minor,
            currency_exponent=exponent(t.currency),
            channel=t.channel,
            entry_mode=t.entry_mode,
            local_hour=moment.hour + moment.minute / 60,
            day_of_week=moment.weekday(),
        )
        if result is None:
            return
        row, context = result
        scorer = self.scorer
        score: float | None = None
        if scorer is not None and self.rule.enabled:
            model_row = row
            columns = self._columns
            if columns is not None:
                model_row = [row[i] for i in columns]
            self.scored += 1
            if self.on_scored is None:  # only the decision is wanted: ordinary rows stop early
                score = scorer.score_if_anomalous(model_row)
            else:
                score = scorer.score(model_row)
            if score is not None and score >= scorer.threshold:
                self._raise(t, scorer, model_row, score, context)
        if self.on_scored is not None:
            self.on_scored(t, row, score)

    def on_outcome(self, sale: Transaction, feedback: Feedback) -> None:
        """An outcome about an approved sale: the features of later sales know it."""
        self.tracker.on_outcome(
            txn_id=sale.txn_id,
            merchant_id=sale.merchant_id,
            terminal_id=sale.terminal_id,
            card_token=sale.card_token,
            known_at=feedback.ts,
            fraud=feedback.fraud,
        )

    def _raise(
        self, t: Transaction, scorer: Scorer, row: list[float], score: float, ctx: SaleContext
    ) -> None:
        drivers = []
        for index, drop in scorer.contributions(row)[:3]:
            name = scorer.feature_names[index]
            drivers.append(
                {
                    "feature": name,
                    "value": round(row[index], 4),
                    "usual": round(float(scorer.model.metadata["feature_medians"][index]), 4),
                    "score_drop_if_usual": round(drop, 4),
                    "explanation": describe_feature(name, row[index], t, ctx),
                }
            )
        amount = format_amount(t.amount_minor, t.currency)
        reasons = "; ".join(str(d["explanation"]) for d in drivers)
        if scorer.model.boosted:
            summary = (
                f"Sale {t.txn_id} of {amount} on terminal {t.terminal_id} looks like the frauds "
                f"confirmed so far (fraud probability {score:.4f}, threshold "
                f"{scorer.threshold:.4f}): {reasons}."
            )
        else:
            summary = (
                f"Sale {t.txn_id} of {amount} on terminal {t.terminal_id} is unlike "
                f"{t.merchant_id}'s usual traffic (anomaly score {score:.3f}, threshold "
                f"{scorer.threshold:.3f}): {reasons}."
            )
        details: dict[str, Any] = {
            "score": round(score, 6),
            "threshold": round(scorer.threshold, 6),
            "model_version": scorer.version,
            "model_kind": scorer.model.kind,
            "card_token": t.card_token,
            "amount_minor": t.amount_minor,
            "currency": t.currency,
            "entry_mode": t.entry_mode,
            "channel": t.channel,
            "top_features": drivers,
        }
        if ctx.merchant_typical_minor is not None:
            details["merchant_typical_amount_minor"] = ctx.merchant_typical_minor
        self.out.open(
            "SUSPICIOUS_PATTERN",
            self.rule,
            (t.txn_id,),
            merchant_id=t.merchant_id,
            terminal_id=t.terminal_id,
            txn_ids=[t.txn_id],
            settlement_ids=[],
            ts=t.ts,
            summary=summary,
            details=details,
        )

    def expire(self, now: int) -> None:
        self.tracker.expire(now)


def _times(ratio: float) -> str:
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def _amount_words(t: Transaction, typical: int | None, whose: str) -> str:
    amount = format_amount(t.amount_minor, t.currency)
    if typical is None:
        return f"amount {amount} is the first sale seen for {whose}"
    ratio = t.amount_minor / max(typical, 1)
    usual = format_amount(typical, t.currency)
    if ratio >= 1:
        return f"amount {amount} is {_times(ratio)} {whose}'s typical sale of {usual}"
    return f"amount {amount} is 1/{_times(1 / ratio)[:-1]} of {whose}'s typical sale of {usual}"


def _outcome_words(name: str, value: float, ctx: SaleContext) -> str | None:
    """The features that read outcomes known so far, in words; None for any other."""
    count = f"{value:.0f} fraud{'' if round(value) == 1 else 's'} confirmed"
    if name.startswith("terminal_frauds_"):
        return f"{count} on this terminal's sales in the last {name.rsplit('_', 1)[1][:-1]} days"
    if name == "merchant_frauds_7d":
        return f"{count} on this merchant's sales in the last 7 days"
    if name == "card_frauds_28d":
        return f"{count} on this card's sales in the last 28 days"
    if name in ("terminal_fraud_rate_28d", "merchant_fraud_rate_28d"):
        whose, sales = (
            ("terminal", ctx.terminal_sales_28d)
            if name.startswith("terminal")
            else ("merchant", ctx.merchant_sales_28d)
        )
        return (
            f"frauds confirmed in the last 28 days amount to {value * 100:.1f}% of this "
            f"{whose}'s {sales:,} sales in that time"
        )
    if name in ("days_since_terminal_fraud", "days_since_merchant_fraud"):
        whose = "terminal" if name.startswith("terminal") else "merchant"
        if value >= NO_FRAUD_DAYS:
            return f"no fraud confirmed on this {whose} in the last year"
        return f"the last fraud on this {whose} was confirmed {value:.1f} days earlier"
    return None


def describe_feature(name: str, value: float, t: Transaction, ctx: SaleContext) -> str:
    """One phrase an operator understands, for one feature of one sale."""
    if name == "amount_vs_merchant":
        return _amount_words(t, ctx.merchant_typical_minor, "this merchant")
    if name == "amount_vs_terminal":
        return _amount_words(t, ctx.terminal_typical_minor, "this terminal")
    if name == "amount_vs_card":
        return _amount_words(t, ctx.card_typical_minor, "this card")
    if name == "card_amount_zscore":
        if value == 0.0:
            return "a card with too few sales to know its usual spending"
        side = "above" if value > 0 else "below"
        return (
            f"{abs(value):.1f} times this card's usual variation {side} its typical sale, "
            "measured on the log of its amounts"
        )
    if name == "log_amount":
        return f"an amount of {format_amount(t.amount_minor, t.currency)}"
    if name in ("local_hour", "hour_rarity"):
        share = ctx.merchant_hour_share * 100
        return (
            f"made at {t.event_time:%H:%M} local time, an hour that carries {share:.1f}% "
            "of this merchant's sales"
        )
    if name == "day_of_week":
        return f"made on a {_WEEKDAYS[t.event_time.weekday()]}"
    if name == "card_sales_10m":
        return f"the card's approved sale number {value:.0f} within 10 minutes"
    if name == "card_merchants_10m":
        return f"the card was used at {value:.0f} merchants within 10 minutes"
    if name == "card_declines_1h":
        return f"the card was declined {value:.0f} times in the hour before"
    if name == "terminal_attempts_10m":
        return f"{value:.0f} attempts on this terminal within 10 minutes"
    if name == "round_amount":
        if value <= 0:
            return "an amount with a fractional part"
        return f"a round amount ({format_amount(t.amount_minor, t.currency)})"
    if name == "entry_risk":
        mode = t.entry_mode or "unknown"
        return f"entry mode {mode}: {_ENTRY_WORDS.get(mode, 'not reported by the terminal')}"
    if name == "channel_qr":
        return "paid by QR code" if value else "paid by card"
    if name == "merchant_refund_ratio":
        return f"this merchant refunds about {value * 100:.1f}% of its sales"
    if name == "merchant_decline_ratio":
        return f"about {value * 100:.1f}% of this merchant's recent attempts were declined"
    words = _outcome_words(name, value, ctx)
    if words is not None:
        return words
    if name == "log_seconds_since_card_sale":
        if ctx.previous_card_sale_us is None:
            return "a card not seen in the last 30 days"
        gap = max(0, t.ts - ctx.previous_card_sale_us)
        return f"the card's previous sale was {describe_duration(gap)} earlier"
    return f"{name} = {value:.3f}"
