"""The money each alert is about, read from alerts the engine really raises."""

from streams.stake import Stake, money_at_stake
from tests.builders import HOUR, MIN, line, run, txn


def test_missing_settlement_puts_the_unsettled_sale_at_stake() -> None:
    r = run(txn("A", 0, amount=12_345), line("S0", "Y", 27 * HOUR))
    assert money_at_stake(r.one("MISSING_SETTLEMENT")) == Stake("CNY", 12_345, "not settled")


def test_duplicate_charge_stakes_every_extra_charge_not_the_first() -> None:
    r = run(txn("A", 0, amount=500), txn("B", 30, amount=500), txn("C", 60, amount=500))
    assert money_at_stake(r.one("DUPLICATE_CHARGE")) == Stake("CNY", 1_000, "charged twice")


def test_settled_without_approval_stakes_what_the_customer_paid() -> None:
    r = run(txn("A", 0, status="DECLINED"), line("SA", "A", 10 * HOUR, gross=930, currency="GBP"))
    assert money_at_stake(r.one("SETTLED_WITHOUT_APPROVAL")) == Stake("GBP", 930, "to refund")


def test_unmatched_settlement_stakes_the_payout() -> None:
    r = run(line("SX", "GHOST", 0, gross=3_928, currency="EUR"), txn("A", HOUR + 1))
    assert money_at_stake(r.one("UNMATCHED_SETTLEMENT")) == Stake("EUR", 3_928, "paid, no sale")


def test_duplicate_settlement_stakes_the_second_payout() -> None:
    r = run(txn("A", 0), line("S1", "A", HOUR), line("S2", "A", 25 * HOUR))
    assert money_at_stake(r.one("DUPLICATE_SETTLEMENT")) == Stake("CNY", 10_000, "paid twice")


def test_amount_mismatch_stakes_the_pay_out_difference() -> None:
    # 100.00 CNY on card at the default rate: fee 0.60, net 99.40; the acquirer kept 1.00.
    fee_short = run(txn("A", 0), line("SA", "A", HOUR, fee=160))
    assert money_at_stake(fee_short.one("AMOUNT_MISMATCH")) == Stake("CNY", 100, "wrong pay-out")
    gross_short = run(txn("A", 0), line("SA", "A", HOUR, gross=9_900))
    stake = money_at_stake(gross_short.one("AMOUNT_MISMATCH"))
    assert stake is not None and stake.minor > 0


def test_refund_anomalies_stake_the_refund_or_its_excess() -> None:
    unknown = run(txn("R", 0, type="REFUND", original="NOPE", amount=700))
    assert money_at_stake(unknown.one("REFUND_ANOMALY")) == Stake("CNY", 700, "refund, no sale")
    over = run(
        txn("A", 0),
        txn("R1", HOUR, type="REFUND", original="A", amount=6_000),
        txn("R2", 2 * HOUR, type="REFUND", original="A", amount=6_000),
    )
    assert money_at_stake(over.one("REFUND_ANOMALY")) == Stake("CNY", 2_000, "over-refunded")


def test_behaviour_alerts_have_no_stake() -> None:
    r = run(*(txn(f"V{i}", i * MIN, amount=100 + i) for i in range(5)))
    assert money_at_stake(r.one("VELOCITY")) is None
