"""The transaction/settlement join and every rule that judges a settlement line.

DUPLICATE_SETTLEMENT, SETTLED_WITHOUT_APPROVAL and AMOUNT_MISMATCH are judged as soon as a line
and its transaction are both known, in whichever order they arrive. MISSING_SETTLEMENT and
UNMATCHED_SETTLEMENT are judged against watermarks: deadlines wait in heaps and are popped when the
settlement (or transaction) watermark passes them.
"""

from __future__ import annotations

from fractions import Fraction

from streams.alerts import Alert
from streams.config import Config
from streams.engine.deadlines import Deadlines
from streams.engine.describe import line_evidence, txn_evidence
from streams.engine.outbox import Outbox
from streams.engine.state import MerchantState, TxnState, expects_settlement
from streams.events import SETTLING_TYPES, Settlement, Transaction
from streams.money import fee_of, format_amount, format_rate
from streams.timefmt import describe_duration, format_us


class Reconciliation:
    def __init__(
        self,
        config: Config,
        out: Outbox,
        merchants: dict[str, MerchantState],
    ) -> None:
        self.config = config
        self.out = out
        self.merchants = merchants
        # (merchant_id, channel) -> fee rate, resolved once from the configuration, and as the
        # rate's (numerator, denominator) for the arithmetic.
        self._rates: dict[tuple[str, str], Fraction] = {}
        self._fee_terms: dict[tuple[str, str], tuple[int, int]] = {}
        # (deadline, merchant_id, id): popped when the relevant watermark passes the deadline.
        self._missing = Deadlines()
        self._unmatched = Deadlines()

    # -- arrivals ------------------------------------------------------------------------------

    def on_transaction(
        self, ms: MerchantState, st: TxnState, t: Transaction, expects: bool
    ) -> None:
        """A new transaction ``t`` (``st.txn``), after any cancellation waiting for it was
        applied; ``expects`` is ``expects_settlement(st)``."""
        txn_id = t.txn_id
        if expects:
            self._missing.push(
                (t.at + self.config.missing_settlement.after_us, t.merchant_id, txn_id)
            )
        lines = ms.lines.get(txn_id)
        if lines is None:  # the usual case: no line came before its transaction
            return
        for line in lines:
            unmatched = ms.unmatched.get(line.settlement_id)
            if unmatched is not None and unmatched.status == "OPEN":
                ms.unmatched[line.settlement_id] = self.out.resolve(
                    unmatched,
                    t.ts,
                    f"Settlement {line.settlement_id} is matched: transaction {t.txn_id} arrived.",
                    resolved_by=t.txn_id,
                )
            self._judge_line(ms, st, line, t.ts)

    def on_settlement(self, ms: MerchantState, line: Settlement) -> None:
        st = ms.txns.get(line.txn_id)
        lines = ms.add_line(line, st)
        if len(lines) > 1 and line.status == "SETTLED":
            settled = [x for x in lines if x.status == "SETTLED"]
            if len(settled) > 1:
                self._duplicate_settlement(ms, settled, line.ts)
        if st is not None:
            self._judge_line(ms, st, line, line.ts)
        elif line.status == "SETTLED":
            self._unmatched.push(
                (
                    line.ts + self.config.unmatched_settlement.after_us,
                    line.merchant_id,
                    line.settlement_id,
                )
            )

    def on_cancel(self, ms: MerchantState, st: TxnState, ts: int) -> None:
        """``st`` was just cancelled: money already settled for it was paid for nothing, and a
        missing settlement is no longer missing."""
        for line in ms.lines.get(st.txn.txn_id, ()):
            if line.status == "SETTLED":
                self._settled_without_approval(ms, st, line, ts, "CANCELLED")
        if st.missing is not None and st.missing.status == "OPEN":
            st.missing = self.out.resolve(
                st.missing,
                ts,
                f"{st.txn.type} {st.txn.txn_id} was cancelled by {st.cancelled_by}; "
                "no settlement is due.",
                resolved_by=st.cancelled_by,
            )

    # -- watermark judgments -------------------------------------------------------------------

    def missing_due(self, settlement_watermark: int) -> bool:
        return self._missing.due(settlement_watermark)

    def unmatched_due(self, transaction_watermark: int) -> bool:
        return self._unmatched.due(transaction_watermark)

    def judge_missing(self, settlement_watermark: int, ts: int) -> None:
        """Raise MISSING_SETTLEMENT for every deadline the settlement watermark has passed."""
        enabled = self.config.missing_settlement.enabled
        merchants = self.merchants
        for deadline, merchant_id, txn_id in self._missing.pop_due(settlement_watermark):
            st = merchants[merchant_id].txns.get(txn_id)
            if st is None or st.settled_ids or st.missing or not expects_settlement(st):
                continue
            if enabled:
                self._raise_missing(st, ts, deadline, None)

    def judge_unmatched(self, transaction_watermark: int, ts: int) -> None:
        """Raise UNMATCHED_SETTLEMENT for SETTLED lines still without a transaction."""
        cfg = self.config.unmatched_settlement
        for _, merchant_id, settlement_id in self._unmatched.pop_due(transaction_watermark):
            ms = self.merchants[merchant_id]
            line = ms.settlements.get(settlement_id)
            if line is None or line.txn_id in ms.txns or settlement_id in ms.unmatched:
                continue
            if not cfg.enabled:
                continue
            amount = format_amount(line.gross_minor, line.currency)
            ms.unmatched[settlement_id] = self.out.open(
                "UNMATCHED_SETTLEMENT",
                cfg,
                (merchant_id, settlement_id),
                merchant_id=merchant_id,
                terminal_id=None,
                txn_ids=[line.txn_id],
                settlement_ids=[settlement_id],
                ts=ts,
                summary=(
                    f"Settlement {settlement_id} paid {amount} to merchant {merchant_id} for "
                    f"{line.txn_id}, a transaction no terminal reported within "
                    f"{describe_duration(cfg.after_us)}: trace it with the acquirer."
                ),
                details={"settlement": line_evidence(line)},
            )

    # -- judging one line against its transaction -----------------------------------------------

    def _judge_line(self, ms: MerchantState, st: TxnState, line: Settlement, ts: int) -> None:
        t = st.txn
        if line.status == "REJECTED":
            enabled = self.config.missing_settlement.enabled
            if enabled and expects_settlement(st) and not st.settled_ids:
                self._raise_missing(st, ts, None, line)
            return
        if t.status != "APPROVED":
            self._settled_without_approval(ms, st, line, ts, t.status)
        elif t.type not in SETTLING_TYPES:
            self._settled_without_approval(ms, st, line, ts, "NOT_SETTLEABLE")
        elif st.cancelled_by is not None:
            self._settled_without_approval(ms, st, line, ts, "CANCELLED")
        else:
            if not st.settled_ids:  # it awaited settlement until now
                ms.count_unsettled(t, -1)
            st.settled_ids += (line.settlement_id,)
            self._check_amounts(t, line, ts)
            if st.missing is not None and st.missing.status == "OPEN":
                late = describe_duration(line.ts - t.ts)
                st.missing = self.out.update(
                    st.missing,
                    ts,
                    status="RESOLVED",
                    summary=f"{t.type} {t.txn_id} settled late in {line.settlement_id}, "
                    f"{late} after the sale.",
                    settlement_ids=[*st.missing.settlement_ids, line.settlement_id],
                    details={"resolved_by": line.settlement_id},
                )

    def _raise_missing(
        self, st: TxnState, ts: int, deadline: int | None, rejected: Settlement | None
    ) -> None:
        t = st.txn
        cfg = self.config.missing_settlement
        amount = format_amount(t.amount_minor, t.currency)
        if rejected is not None:
            reason = "REJECTED"
            summary = (
                f"The acquirer rejected {t.type} {t.txn_id} of {amount} at merchant "
                f"{t.merchant_id} ({rejected.settlement_id}): the merchant will not be paid "
                "unless it is re-presented."
            )
        else:
            reason = "NO_SETTLEMENT"
            summary = (
                f"{t.type} {t.txn_id} of {amount} at merchant {t.merchant_id} has not settled "
                f"{describe_duration(cfg.after_us)} after the sale: chase the acquirer."
            )
        details = {
            "reason": reason,
            "amount_minor": t.amount_minor,
            "currency": t.currency,
            "transaction": txn_evidence(t),
            "deadline": format_us(deadline if deadline is not None else t.at + cfg.after_us),
        }
        settlement_ids = [] if rejected is None else [rejected.settlement_id]
        if st.missing is None:
            st.missing = self.out.open(
                "MISSING_SETTLEMENT",
                cfg,
                (t.merchant_id, t.txn_id),
                merchant_id=t.merchant_id,
                terminal_id=t.terminal_id,
                txn_ids=[t.txn_id],
                settlement_ids=settlement_ids,
                ts=ts,
                summary=summary,
                details=details,
            )
        elif rejected is not None and rejected.settlement_id not in st.missing.settlement_ids:
            st.missing = self.out.update(
                st.missing,
                ts,
                status="OPEN",
                summary=summary,
                settlement_ids=[*st.missing.settlement_ids, rejected.settlement_id],
                details=details,
            )

    def _settled_without_approval(
        self, ms: MerchantState, st: TxnState, line: Settlement, ts: int, reason: str
    ) -> None:
        cfg = self.config.settled_without_approval
        if not cfg.enabled:
            return
        t = st.txn
        why = {
            "DECLINED": "was DECLINED at the terminal",
            "TIMEOUT": "TIMED OUT at the terminal",
            "CANCELLED": f"was cancelled by {st.cancelled_by}",
            "NOT_SETTLEABLE": f"is a {t.type}, which never settles",
        }[reason]
        amount = format_amount(line.gross_minor, line.currency)
        self.out.open(
            "SETTLED_WITHOUT_APPROVAL",
            cfg,
            (t.merchant_id, line.settlement_id),
            merchant_id=t.merchant_id,
            terminal_id=t.terminal_id,
            txn_ids=[t.txn_id],
            settlement_ids=[line.settlement_id],
            ts=ts,
            summary=(
                f"{amount} was settled in {line.settlement_id} for {t.txn_id}, which {why}: "
                "the customer paid for a failed sale; refund them."
            ),
            details={
                "reason": reason,
                "transaction": txn_evidence(t),
                "settlement": line_evidence(line),
                "card_token": t.card_token,
            },
        )

    def _rate(self, merchant_id: str, channel: str) -> Fraction:
        key = (merchant_id, channel)
        rate = self._rates.get(key)
        if rate is None:
            rate = self._rates[key] = self.config.fees.rate(merchant_id, channel)
        return rate

    def _expected_fee(self, gross_minor: int, merchant_id: str, channel: str) -> int:
        key = (merchant_id, channel)
        terms = self._fee_terms.get(key)
        if terms is None:
            rate = self._rate(merchant_id, channel)
            terms = self._fee_terms[key] = (rate.numerator, rate.denominator)
        return fee_of(gross_minor, terms[0], terms[1])

    def _check_amounts(self, t: Transaction, line: Settlement, ts: int) -> None:
        cfg = self.config.amount_mismatch
        if not cfg.enabled:
            return
        fees = self.config.fees
        gross = line.gross_minor
        fee = 0 if t.type == "REFUND" else self._expected_fee(gross, t.merchant_id, t.channel)
        if (
            gross == t.amount_minor
            and line.currency == t.currency
            and abs(line.fee_minor - fee) <= fees.tolerance_minor
            and line.net_minor == gross - line.fee_minor
        ):
            return
        problems: list[str] = []
        reasons: list[str] = []
        if line.currency != t.currency:
            reasons.append("CURRENCY")
            problems.append(f"currency {line.currency} differs from the sale's {t.currency}")
        if line.gross_minor != t.amount_minor:
            reasons.append("GROSS")
            problems.append(
                f"gross {format_amount(line.gross_minor, line.currency)} differs from the "
                f"{t.type.lower()}'s {format_amount(t.amount_minor, t.currency)}"
            )
        if t.type == "REFUND":
            rate_text = "none on refunds"
        else:
            rate_text = format_rate(self._rate(t.merchant_id, t.channel))
        if abs(line.fee_minor - fee) > fees.tolerance_minor:
            reasons.append("FEE")
            problems.append(
                f"fee {format_amount(line.fee_minor, line.currency)} where "
                f"{format_amount(fee, line.currency)} is expected ({t.channel} {rate_text})"
            )
        if line.net_minor != line.gross_minor - line.fee_minor:
            reasons.append("NET")
            problems.append(
                f"net {format_amount(line.net_minor, line.currency)} is not gross minus fee "
                f"({format_amount(line.gross_minor - line.fee_minor, line.currency)})"
            )
        if not problems:
            return
        self.out.open(
            "AMOUNT_MISMATCH",
            cfg,
            (t.merchant_id, line.settlement_id),
            merchant_id=t.merchant_id,
            terminal_id=t.terminal_id,
            txn_ids=[t.txn_id],
            settlement_ids=[line.settlement_id],
            ts=ts,
            summary=f"Settlement {line.settlement_id} for {t.txn_id} at merchant "
            f"{t.merchant_id}: {'; '.join(problems)}.",
            details={
                "reasons": reasons,
                "amount_minor": t.amount_minor,
                "gross_minor": line.gross_minor,
                "fee_minor": line.fee_minor,
                "expected_fee_minor": fee,
                "fee_rate": rate_text,
                "net_minor": line.net_minor,
                "expected_net_minor": line.gross_minor - line.fee_minor,
                "currency": line.currency,
                "transaction": txn_evidence(t),
                "settlement": line_evidence(line),
            },
        )

    def _duplicate_settlement(self, ms: MerchantState, settled: list[Settlement], ts: int) -> None:
        cfg = self.config.duplicate_settlement
        if not cfg.enabled:
            return
        first = settled[0]
        ids = [x.settlement_id for x in settled]
        paid = sum(x.gross_minor for x in settled if x.currency == first.currency)
        summary = (
            f"Transaction {first.txn_id} at merchant {first.merchant_id} was settled "
            f"{len(settled)} times ({', '.join(ids)}), {format_amount(paid, first.currency)} in "
            "all: recover the duplicate payout from the acquirer."
        )
        details = {"settlements": [line_evidence(x) for x in settled]}
        existing: Alert | None = ms.duplicate_settlements.get(first.txn_id)
        if existing is None:
            ms.duplicate_settlements[first.txn_id] = self.out.open(
                "DUPLICATE_SETTLEMENT",
                cfg,
                (first.merchant_id, first.txn_id),
                merchant_id=first.merchant_id,
                terminal_id=None,
                txn_ids=[first.txn_id],
                settlement_ids=ids,
                ts=ts,
                summary=summary,
                details=details,
            )
        else:
            ms.duplicate_settlements[first.txn_id] = self.out.update(
                existing, ts, summary=summary, settlement_ids=ids, details=details
            )
