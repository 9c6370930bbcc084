"""TERMINAL_FAULT: a terminal whose attempts time out at a high rate."""

from __future__ import annotations

from streams.config import Config
from streams.engine.outbox import Outbox
from streams.engine.state import MerchantState, TerminalWindow
from streams.events import Transaction
from streams.timefmt import describe_duration


class TerminalHealth:
    """Sliding event-time window of attempts per terminal.

    Raised when the window holds at least ``min_attempts`` attempts of which at least
    ``timeout_ratio`` timed out; resolved when the ratio falls back below it. A fault that returns
    within one window of its resolution reopens the same alert instead of raising a new one, so a
    terminal hovering around the threshold does not flood the dashboard.
    """

    def __init__(self, config: Config, out: Outbox) -> None:
        self.cfg = config.terminal_fault
        self.out = out

    def on_attempt(self, ms: MerchantState, t: Transaction) -> None:
        if not self.cfg.enabled:
            return
        window = self.cfg.window_us
        term = ms.terminals.get(t.terminal_id)
        if term is None:
            term = ms.terminals[t.terminal_id] = TerminalWindow()
        attempts = term.attempts
        timed_out = t.status == "TIMEOUT"
        ts = t.ts
        entry = (ts, timed_out, t.txn_id)
        # In order (the usual case) when after the newest: times compare natively first, where
        # comparing the tuples boxes both.
        last_ts = attempts[-1][0] if attempts else ts - 1
        if last_ts < ts or (last_ts == ts and attempts[-1] <= entry):
            attempts.append(entry)
            timeouts = term.timeouts + timed_out
            horizon = ts - window
            while attempts[0][0] < horizon:
                timeouts -= attempts.popleft()[1]
            term.timeouts = timeouts
            around: list[tuple[int, bool, str]] | None = None  # the whole deque
            count = len(attempts)
        else:  # a late attempt: rebuild the window around it
            ordered = sorted([*attempts, entry])
            newest = ordered[-1][0]
            attempts.clear()
            attempts.extend([a for a in ordered if a[0] >= newest - window])
            term.timeouts = sum(a[1] for a in attempts)
            around = [a for a in attempts if t.ts - window <= a[0] <= t.ts]
            count, timeouts = len(around), sum(a[1] for a in around)
        alert = term.alert
        if (alert is None or alert.status == "RESOLVED") and (
            timeouts == 0 or count < self.cfg.min_attempts
        ):
            return
        ratio = self.cfg.timeout_ratio
        at_or_over = timeouts * ratio.denominator >= ratio.numerator * count
        in_window = list(attempts) if around is None else around
        if alert is None or alert.status == "RESOLVED":
            if not at_or_over:
                return
            pct = 100 * timeouts // count
            summary = (
                f"Terminal {t.terminal_id} at merchant {t.merchant_id}: {timeouts} of its last "
                f"{count} attempts timed out within {describe_duration(window)} ({pct}%); check "
                "its network link and the host connection."
            )
            details = {
                "attempts": count,
                "timeouts": timeouts,
                "timeout_percent": pct,
                "window_seconds": window // 1_000_000,
            }
            txn_ids = [a[2] for a in in_window]
            reopen = (
                alert is not None
                and term.resolved_ts is not None
                and t.ts - term.resolved_ts <= window
            )
            if alert is not None and reopen:
                term.alert = self.out.update(
                    alert, t.ts, status="OPEN", summary=summary, txn_ids=txn_ids, details=details
                )
            else:
                term.alert = self.out.open(
                    "TERMINAL_FAULT",
                    self.cfg,
                    (t.merchant_id, t.terminal_id, t.txn_id),
                    merchant_id=t.merchant_id,
                    terminal_id=t.terminal_id,
                    txn_ids=txn_ids,
                    settlement_ids=[],
                    ts=t.ts,
                    summary=summary,
                    details=details,
                )
        elif not at_or_over:
            term.resolved_ts = t.ts
            term.alert = self.out.resolve(
                alert,
                t.ts,
                f"Terminal {t.terminal_id} at merchant {t.merchant_id} recovered: {timeouts} of "
                f"{count} attempts timed out in the last {describe_duration(window)}.",
                recovered_by=t.txn_id,
                timeouts_in_window=timeouts,
                attempts_in_window=count,
            )

    @staticmethod
    def expire(ms: MerchantState, before: int) -> None:
        """Drop terminals idle since ``before`` whose alert is closed (or never opened)."""
        idle = [
            tid
            for tid, term in ms.terminals.items()
            if term.attempts[-1][0] < before
            and (term.alert is None or term.alert.status == "RESOLVED")
        ]
        for tid in idle:
            del ms.terminals[tid]
