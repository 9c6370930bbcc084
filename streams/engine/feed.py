"""Watermarks, SETTLEMENT_FEED_GAP, and the hold on missing-settlement judgments.

The settlement feed is one feed: one watermark, one gap alert (one page), however many merchants.
"""

from __future__ import annotations

from streams.alerts import FLEET, Alert
from streams.config import Config
from streams.engine.outbox import Outbox
from streams.timefmt import describe_duration, format_us

FeedState = tuple[
    int | None, int | None, int | None, str | None, Alert | None, int | None, int | None
]


class FeedMonitor:
    def __init__(self, config: Config, out: Outbox) -> None:
        self.cfg = config.feed_gap
        self.out = out
        self.transaction_wm: int | None = None
        self.first_transaction: int | None = None
        self.settlement_max: int | None = None
        self.last_settlement_id: str | None = None
        self.gap: Alert | None = None  # open gap alert
        self.gap_started: int | None = None
        self.hold_until: int | None = None

    def state(self) -> FeedState:
        """What it knows, for a snapshot (``streams/engine/snapshot.py``)."""
        return (
            self.transaction_wm,
            self.first_transaction,
            self.settlement_max,
            self.last_settlement_id,
            self.gap,
            self.gap_started,
            self.hold_until,
        )

    def load_state(self, state: FeedState) -> None:
        (
            self.transaction_wm,
            self.first_transaction,
            self.settlement_max,
            self.last_settlement_id,
            self.gap,
            self.gap_started,
            self.hold_until,
        ) = state

    @property
    def settlement_wm(self) -> int | None:
        """Latest ``settled_at`` seen; before any settlement, the first transaction's time."""
        return self.settlement_max if self.settlement_max is not None else self.first_transaction

    def saw_transactions(self, ts: int) -> None:
        if self.first_transaction is None:
            self.first_transaction = ts
        if self.transaction_wm is None or ts > self.transaction_wm:
            self.transaction_wm = ts

    def saw_settlements(self, ts: int, settlement_id: str) -> None:
        """``settlement_id``: the greatest id among the lines of this step. Of the lines at the
        watermark, the greatest id is kept, so a batch processed in several steps (a stream that
        went idle mid-batch) names the same line as one processed at once."""
        if self.settlement_max is None or ts > self.settlement_max:
            self.settlement_max = ts
            self.last_settlement_id = settlement_id
        elif ts == self.settlement_max and settlement_id > (self.last_settlement_id or ""):
            self.last_settlement_id = settlement_id

    def missing_judgments_allowed(self) -> bool:
        """False while a gap is open and until the settlement watermark is past the hold."""
        if self.gap is not None:
            return False
        sw = self.settlement_wm
        return self.hold_until is None or (sw is not None and sw > self.hold_until)

    def check(self, ts: int) -> None:
        """Open or close the gap alert after the watermarks moved (``ts``: the step's time)."""
        if not self.cfg.enabled or self.transaction_wm is None:
            return
        sw = self.settlement_wm
        assert sw is not None
        lag = self.transaction_wm - sw
        if self.gap is None and lag > self.cfg.gap_us:
            since = "the first transaction" if self.settlement_max is None else format_us(sw)
            self.gap_started = sw
            self.gap = self.out.open(
                "SETTLEMENT_FEED_GAP",
                self.cfg,
                (sw,),
                merchant_id=FLEET,
                terminal_id=None,
                txn_ids=[],
                settlement_ids=[self.last_settlement_id] if self.last_settlement_id else [],
                ts=ts,
                summary=(
                    f"The settlement feed has stalled: no settlement line since {since}, "
                    f"{describe_duration(lag)} behind the transactions. Missing-settlement "
                    "checks are paused until it catches up; check the acquirer's batch delivery."
                ),
                details={
                    "settlement_watermark": format_us(sw),
                    "transaction_watermark": format_us(self.transaction_wm),
                    "lag_seconds": lag // 1_000_000,
                    "threshold_seconds": self.cfg.gap_us // 1_000_000,
                    "last_settlement_id": self.last_settlement_id,
                },
            )
        elif self.gap is not None and lag <= self.cfg.gap_us:
            started = self.gap_started if self.gap_started is not None else sw
            self.hold_until = sw + self.cfg.hold_after_close_us
            self.out.resolve(
                self.gap,
                ts,
                f"The settlement feed caught up to {format_us(sw)} "
                f"(it had stalled at {format_us(started)}); missing-settlement checks resume "
                f"after {format_us(self.hold_until)}.",
                settlement_watermark=format_us(sw),
                transaction_watermark=format_us(self.transaction_wm),
                lag_seconds=lag // 1_000_000,
                hold_until=format_us(self.hold_until),
            )
            self.gap = None
