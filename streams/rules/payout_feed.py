"""How far the pay-out feed has come, against the settlement feed and merchant by merchant: what
decides whether missing pay-outs may be judged (``payouts.py``).

The pay-out watermark is the latest ``value_date`` seen; the settlement watermark the latest
``settled_at`` of a SETTLED line. The feed has stalled while it is more than ``feed_gap`` behind
the settlements, and missing pay-outs wait until it is ``hold_after_close`` past the point where
it caught up. Each merchant's statements are a feed of their own: a merchant whose latest pay-out
lags the others' by more than ``missing_after`` has a late statement, and its batches wait for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.rules.payout_config import PayoutConfig

FeedState = tuple[int | None, int | None, bool, int | None, dict[str, int]]


@dataclass(slots=True)
class PayoutFeed:
    cfg: PayoutConfig
    settlement_wm: int | None = None
    payout_wm: int | None = None
    merchant_wm: dict[str, int] = field(default_factory=dict)
    """Per merchant, the latest value date of its pay-outs: how far its statements came."""
    stalled: bool = False
    hold_until: int | None = None

    def saw_line(self, ts: int) -> bool:
        """A SETTLED line at ``ts``; True when the settlement watermark moved."""
        if self.settlement_wm is None or ts > self.settlement_wm:
            self.settlement_wm = ts
            return True
        return False

    def saw_payout(self, merchant_id: str, ts: int) -> bool:
        """A pay-out of ``merchant_id`` at ``ts``; True when the merchant's statements moved."""
        if self.payout_wm is None or ts > self.payout_wm:
            self.payout_wm = ts
        if ts > self.merchant_wm.get(merchant_id, -(2**62)):
            self.merchant_wm[merchant_id] = ts
            return True
        return False

    @property
    def lag_us(self) -> int | None:
        """How far the pay-out feed is behind the settlements (None before either)."""
        if self.payout_wm is None or self.settlement_wm is None:
            return None
        return self.settlement_wm - self.payout_wm

    def follow(self) -> None:
        """Open or close the stall after the watermarks moved."""
        lag = self.lag_us
        if lag is None:
            return
        if not self.stalled and lag > self.cfg.feed_gap_us:
            self.stalled = True
        elif self.stalled and lag <= self.cfg.feed_gap_us:
            self.stalled = False
            assert self.payout_wm is not None
            self.hold_until = self.payout_wm + self.cfg.hold_after_close_us

    def judging_missing(self) -> bool:
        pw = self.payout_wm
        if pw is None or self.stalled:
            return False
        return self.hold_until is None or pw > self.hold_until

    def statements_current(self, merchant_id: str) -> bool:
        """Whether the merchant's own pay-outs keep up with the feed's. A merchant never paid
        yet is judged on the feed's watermark, unless ``judge_unpaid_merchants`` is off."""
        own = self.merchant_wm.get(merchant_id)
        if own is None or self.payout_wm is None:
            return self.cfg.judge_unpaid_merchants
        return self.payout_wm - own <= self.cfg.missing_after_us

    def late_statements(self) -> list[str]:
        """Merchants whose pay-outs are more than ``feed_gap`` behind the feed's."""
        pw = self.payout_wm
        if pw is None:
            return []
        gap = self.cfg.feed_gap_us
        return sorted(m for m, own in self.merchant_wm.items() if pw - own > gap)

    def forget_before(self, horizon: int) -> None:
        self.merchant_wm = {m: ts for m, ts in self.merchant_wm.items() if ts >= horizon}

    def state(self) -> FeedState:
        return (
            self.settlement_wm,
            self.payout_wm,
            self.stalled,
            self.hold_until,
            self.merchant_wm,
        )

    def load_state(self, state: Any) -> None:
        (
            self.settlement_wm,
            self.payout_wm,
            self.stalled,
            self.hold_until,
            self.merchant_wm,
        ) = state
