"""VELOCITY: one card used too often, or at too many merchants, within minutes.

This is the one rule keyed by card rather than merchant. Replay runs it inside the engine; the
stream worker runs it behind a repartition by ``card_token`` (``streams/worker/cards.py``), fed
the approved sales every partition's engine routes out, merged on event time.
"""

from __future__ import annotations

from bisect import insort

from streams.config import Config
from streams.engine.outbox import Outbox
from streams.engine.records import CardHistory
from streams.timefmt import describe_duration


class Velocity:
    def __init__(self, config: Config, out: Outbox) -> None:
        self.cfg = config.velocity
        self.out = out
        self.cards: dict[str, CardHistory] = {}
        self._fewest_to_trigger = min(self.cfg.max_sales, self.cfg.distinct_merchants)

    def on_card_sale(self, ts: int, card_token: str, merchant_id: str, txn_id: str) -> None:
        """An approved sale, by the fields the rule reads (what the repartition carries)."""
        if not self.cfg.enabled:
            return
        window = self.cfg.window_us
        history = self.cards.get(card_token)
        if history is None:
            self.cards[card_token] = CardHistory([(ts, merchant_id, txn_id)])
            return
        sales = history.sales
        entry = (ts, merchant_id, txn_id)
        if not sales or sales[-1] <= entry:
            sales.append(entry)
        else:
            insort(sales, entry)
        horizon = sales[-1][0] - window
        if sales[0][0] < horizon:  # sorted: the expired sales are a prefix
            stale = 1
            while sales[stale][0] < horizon:
                stale += 1
            del sales[:stale]
        if len(sales) < self._fewest_to_trigger:
            return
        # The window that ends at this sale; for a sale that arrives after later ones of its card
        # (the repartition overtook a partition that was behind), also the windows that end at
        # those later sales: the first of them to trigger is where an in-order run alerted.
        ends = [entry] if sales[-1] is entry else [e for e in sales if ts <= e[0] <= ts + window]
        for end in ends:
            ts, merchant_id = end[0], end[1]
            in_window = [s for s in sales if ts - window <= s[0] <= ts]
            merchants = sorted({s[1] for s in in_window})
            by_count = len(in_window) >= self.cfg.max_sales
            by_merchants = len(merchants) >= self.cfg.distinct_merchants
            if by_count or by_merchants:
                break
        else:
            return
        alert = history.alert
        reasons = (["COUNT"] if by_count else []) + (["MERCHANTS"] if by_merchants else [])
        txn_ids = [s[2] for s in in_window]
        span = in_window[-1][0] - in_window[0][0]
        summary = (
            f"Card {card_token} made {len(in_window)} approved sales at {len(merchants)} "
            f"merchant{'s' if len(merchants) > 1 else ''} within {describe_duration(span)}: "
            "check for card testing or a stolen card."
        )
        # Which merchant each sale was at: an operator's verdict on the card goes back to each
        # sale's own partition as feedback (``streams/worker/casebook.py``).
        txn_merchants: dict[str, str] = {s[2]: s[1] for s in in_window}
        details = {
            "card_token": card_token,
            "reasons": reasons,
            "sales_in_window": len(in_window),
            "merchants": merchants,
            "window_seconds": window // 1_000_000,
            "txn_merchants": txn_merchants,
        }
        if alert is not None and ts - history.last_ts <= window:
            known = set(alert.txn_ids)
            merged = alert.txn_ids + [i for i in txn_ids if i not in known]
            if merged != alert.txn_ids:
                earlier: dict[str, str] = alert.details.get("txn_merchants", {})
                details["txn_merchants"] = {**earlier, **txn_merchants}
                history.alert = self.out.update(
                    alert, ts, summary=summary, txn_ids=merged, details=details
                )
        else:
            history.alert = self.out.open(
                "VELOCITY",
                self.cfg,
                (card_token, txn_ids[0]),
                merchant_id=merchant_id,
                terminal_id=None,
                txn_ids=txn_ids,
                settlement_ids=[],
                ts=ts,
                summary=summary,
                details=details,
            )
        history.last_ts = max(history.last_ts, ts)

    def expire(self, before: int) -> None:
        """Forget cards with no sale since ``before`` (their window and episode are over)."""
        cards = self.cards
        for card in [c for c, history in cards.items() if history.sales[-1][0] < before]:
            del cards[card]
