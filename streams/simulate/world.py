"""The simulation's world: clock, fleet, cards, ids, and the normal traffic of a merchant fleet.

Normal traffic is guarded so that it never trips a rule by accident: a card is never reused within
15 minutes by ordinary shoppers, and a terminal's ordinary timeouts are at least 10 minutes apart.
Everything that should raise an alert is injected on purpose (``scenarios``) and labelled.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any, Final

from streams.money import expected_fee, exponent
from streams.simulate.fleet import Merchant, build_fleet
from streams.simulate.records import SettleMode, SimLine, SimTxn

HOUR: Final = 3_600_000_000
MINUTE: Final = 60_000_000
SECOND: Final = 1_000_000
DAY: Final = 24 * HOUR
BATCH_HOUR: Final = 1.5  # T+1 batches are stamped 01:30 UTC: no sale is older than 25.5 h
CARD_REUSE_GAP: Final = 15 * MINUTE
TIMEOUT_GAP: Final = 11 * MINUTE
_LATER_ON_WEEKENDS: Final = frozenset({"cafe", "grocery", "restaurant", "electronics"})


@dataclass(frozen=True)
class SimulationSettings:
    seed: int = 1
    days: int = 4
    merchants: int = 40
    sales_per_terminal_day: int = 60
    start: str = "2026-03-02"

    def validate(self) -> None:
        if self.days < 4:
            raise ValueError("--days must be at least 4 (the late-batch scenario spans 3 days)")
        if self.merchants < 10:
            raise ValueError("--merchants must be at least 10")
        if self.sales_per_terminal_day < 1:
            raise ValueError("--sales-per-terminal-day must be at least 1")
        try:
            datetime.strptime(self.start, "%Y-%m-%d")
        except ValueError:
            raise ValueError(
                f"--start must be a date like 2026-03-02, got {self.start!r}"
            ) from None


class World:
    def __init__(self, settings: SimulationSettings) -> None:
        settings.validate()
        self.settings = settings
        self.rng = random.Random(settings.seed)
        day0 = datetime.strptime(settings.start, "%Y-%m-%d").replace(tzinfo=UTC)
        self.start = round(day0.timestamp()) * SECOND
        self.days = settings.days
        self.end = self.start + self.days * DAY
        self.fleet = build_fleet(self.rng, settings.merchants)
        self.late_day = 1  # the acquirer delivers this day's batch 34 h late
        self.txns: list[SimTxn] = []
        self.lines: list[SimLine] = []
        self.labels: list[dict[str, Any]] = []
        self.bad_lines: list[tuple[str, int, bytes]] = []  # (file kind, ts to sit near, raw)
        self.conflict: SimTxn | None = None  # a resend of a known txn_id with other content
        self.payouts: list[Any] = []  # ``payouts.SimPayout``, once the batches are paid
        self.fee_overrides: dict[str, dict[str, Fraction]] = {
            self.fleet[2].merchant_id: {"CARD": Fraction(45, 10000)}
        }
        self._card_uses: dict[str, list[int]] = {}
        self._cards: list[str] = []
        self._last_timeout: dict[str, int] = {}
        self._txn_seq = 0
        self._line_seq = 0

    # -- ids and cards --------------------------------------------------------------------------

    def txn_id(self) -> str:
        self._txn_seq += 1
        return f"T{self._txn_seq:09d}"

    def settlement_id(self) -> str:
        self._line_seq += 1
        return f"S{self._line_seq:09d}"

    def fresh_card(self) -> str:
        return f"tok_{self.rng.getrandbits(64):016x}"

    def shopper_card(self, ts: int) -> str:
        """A card from the pool not used within 15 minutes of ``ts`` (a new card if none is)."""
        pool = self._cards
        for _ in range(8):
            if not pool:
                break
            card = pool[self.rng.randrange(len(pool))]
            uses = self._card_uses[card]
            if all(abs(u - ts) >= CARD_REUSE_GAP for u in uses):
                uses.append(ts)
                return card
        card = self.fresh_card()
        pool.append(card)
        self._card_uses[card] = [ts]
        return card

    # -- amounts and times ----------------------------------------------------------------------

    def amount(self, merchant: Merchant) -> int:
        median = merchant.median_minor()
        value = median * math.exp(self.rng.gauss(0, 0.6))
        step = 10 ** max(0, exponent(merchant.currency) - 1) if self.rng.random() < 0.3 else 1
        return max(step, round(value / step) * step)

    def open_moment(self, merchant: Merchant, day: int) -> int:
        """A moment inside the merchant's opening hours on local ``day`` (may fall off the run)."""
        cat = merchant.category
        opens: float = cat.open_hour
        hours_open = cat.hours_open
        weekday = (self.start // DAY + 3 + day) % 7  # the epoch was a Thursday; Monday = 0
        if weekday >= 5 and cat.name in _LATER_ON_WEEKENDS:  # shops open later at weekends
            opens += 1.5
        elif weekday in (4, 5) and cat.name == "bar":  # and bars close later on Fri/Sat
            hours_open += 2
        hour = opens + self.rng.triangular(0, hours_open, hours_open * 0.55)
        local_midnight = self.start + day * DAY - merchant.region.offset_seconds * SECOND
        return local_midnight + round(hour * 3600) * SECOND  # terminals stamp whole seconds

    def in_run(self, ts: int) -> bool:
        return self.start <= ts < self.end

    def batch_time(self, ts: int) -> int:
        day = (ts - self.start) // DAY
        if day == self.late_day:
            return self.start + (day + 2) * DAY + round(11.5 * HOUR)
        return self.start + (day + 1) * DAY + round(BATCH_HOUR * HOUR)

    def final_batch_time(self) -> int:
        return self.start + self.days * DAY + round(BATCH_HOUR * HOUR)

    # -- building blocks ------------------------------------------------------------------------

    def entry(self, merchant: Merchant) -> tuple[str, str]:
        if self.rng.random() < merchant.region.qr_share:
            return "QR", "QR"
        r = self.rng.random()
        mode = (
            "CHIP" if r < 0.55 else "CONTACTLESS" if r < 0.93 else "SWIPE" if r < 0.98 else "KEYED"
        )
        return "CARD", mode

    def add(self, txn: SimTxn) -> SimTxn:
        self.txns.append(txn)
        return txn

    def sale(
        self,
        merchant: Merchant,
        terminal: str,
        ts: int,
        card: str,
        amount: int,
        status: str = "APPROVED",
        settle: SettleMode | None = None,
    ) -> SimTxn:
        channel, mode = self.entry(merchant)
        default: SettleMode = "normal" if status == "APPROVED" else "none"
        return self.add(
            SimTxn(
                self.txn_id(),
                merchant,
                terminal,
                card,
                "SALE",
                status,
                amount,
                channel,
                mode,
                ts,
                settle=settle or default,
            )
        )

    def follow_up(self, original: SimTxn, kind: str, ts: int, amount: int | None = None) -> SimTxn:
        """A REFUND, VOID or REVERSAL of ``original`` on the same terminal and card."""
        settle: SettleMode = "normal" if kind == "REFUND" else "none"
        return self.add(
            SimTxn(
                self.txn_id(),
                original.merchant,
                original.terminal_id,
                original.card_token,
                kind,
                "APPROVED",
                amount or original.amount_minor,
                original.channel,
                original.entry_mode,
                ts,
                original_txn_id=original.txn_id,
                settle=settle,
            )
        )

    def label(self, kind: str, final_status: str, scenario: str, **evidence: Any) -> None:
        self.labels.append(
            {
                "type": kind,
                "final_status": final_status,
                "scenario": scenario,
                "merchant_id": evidence.get("merchant_id"),
                "terminal_id": evidence.get("terminal_id"),
                "txn_ids": evidence.get("txn_ids", []),
                "settlement_ids": evidence.get("settlement_ids", []),
                "payout_ids": evidence.get("payout_ids", []),
            }
        )

    # -- normal traffic -------------------------------------------------------------------------

    def normal_traffic(self) -> None:
        rate = self.settings.sales_per_terminal_day
        for day in range(-1, self.days + 1):  # local days overlapping the UTC run
            for merchant in self.fleet:
                mean = rate * merchant.size
                for terminal in merchant.terminals:
                    count = max(0, round(self.rng.gauss(mean, math.sqrt(mean))))
                    moments = sorted(self.open_moment(merchant, day) for _ in range(count))
                    for ts in moments:
                        if self.in_run(ts):
                            self._shopper(merchant, terminal, ts)

    def _shopper(self, merchant: Merchant, terminal: str, ts: int) -> None:
        rng = self.rng
        card = self.shopper_card(ts)
        amount = self.amount(merchant)
        roll = rng.random()
        if roll < 0.03:  # declined; half the customers retry and get approved
            self.sale(merchant, terminal, ts, card, amount, "DECLINED")
            retry = ts + rng.randrange(20, 90) * SECOND
            if rng.random() < 0.5 and self.in_run(retry):
                self._approved(merchant, terminal, retry, card, amount)
            return
        if roll < 0.04 and ts - self._last_timeout.get(terminal, -DAY) >= TIMEOUT_GAP:
            self._last_timeout[terminal] = ts
            self.sale(merchant, terminal, ts, card, amount, "TIMEOUT")
            return
        self._approved(merchant, terminal, ts, card, amount)

    def _approved(self, merchant: Merchant, terminal: str, ts: int, card: str, amount: int) -> None:
        rng = self.rng
        sale = self.sale(merchant, terminal, ts, card, amount)
        sale.redeliver = rng.random() < 0.002
        roll = rng.random()
        if roll < 0.01:  # cashier voids a mistaken charge within minutes
            void_ts = ts + rng.randrange(30, 300) * SECOND
            if self.in_run(void_ts):
                sale.settle = "none"
                self.follow_up(sale, "VOID" if roll < 0.007 else "REVERSAL", void_ts)
        elif roll < 0.035:  # refunds: full, or two partial refunds adding up exactly
            first = ts + rng.randrange(1, 72) * HOUR
            if not self.in_run(first + HOUR):
                return
            if roll < 0.025:
                self.follow_up(sale, "REFUND", first)
            elif amount >= 2:
                part = rng.randrange(1, amount)
                self.follow_up(sale, "REFUND", first, part)
                second = first + rng.randrange(1, 6) * HOUR
                if self.in_run(second):
                    self.follow_up(sale, "REFUND", second, amount - part)

    # -- settlement -----------------------------------------------------------------------------

    def fee_rate(self, txn: SimTxn) -> Fraction:
        override = self.fee_overrides.get(txn.merchant.merchant_id, {})
        default = Fraction(6, 1000) if txn.channel == "CARD" else Fraction(38, 10000)
        return override.get(txn.channel, default)

    def settle_all(self) -> None:
        for txn in self.txns:
            if txn.settle in ("none", "drop"):
                continue
            when = self.final_batch_time() if txn.settle == "late" else self.batch_time(txn.ts)
            for line in self.lines_for(txn, when):
                self.lines.append(line)

    def lines_for(self, txn: SimTxn, when: int) -> list[SimLine]:
        gross = txn.amount_minor
        if txn.settle == "gross_off":
            gross = max(1, gross - max(1, gross // 20))
        fee = 0 if txn.type == "REFUND" else expected_fee(gross, self.fee_rate(txn))
        if txn.settle == "fee_off":
            fee += 7 + gross // 500
        net = gross - fee
        if txn.settle == "net_off":
            net -= 50
        status = "SETTLED"
        if txn.settle == "reject":
            status, fee, net = "REJECTED", 0, 0
        day = datetime.fromtimestamp(when / SECOND - 86400, UTC).strftime("%Y%m%d")
        merchant = txn.merchant
        offset = merchant.region.offset_seconds if merchant.currency == "CNY" else 0
        line = SimLine(
            self.settlement_id(),
            txn.txn_id,
            merchant.merchant_id,
            gross,
            fee,
            net,
            merchant.currency,
            status,
            f"B{day}-{merchant.currency}",
            when,
            offset,
            redeliver=self.rng.random() < 0.002,
        )
        if txn.settle != "duplicate":
            return [line]
        again = SimLine(
            self.settlement_id(),
            txn.txn_id,
            merchant.merchant_id,
            gross,
            fee,
            net,
            merchant.currency,
            status,
            line.batch_id,
            when,
            offset,
        )
        return [line, again]
