"""State stays bounded: evidence past retention and idle short windows are dropped."""

from streams.configfile import config_from_mapping
from streams.engine.txn_rules import LocalRules, TransactionRules
from tests.builders import HOUR, Run, line, run, txn

DAY = 24 * HOUR


def _transaction_rules(r: Run) -> TransactionRules:
    local = r.engine.offload
    assert isinstance(local, LocalRules)
    return local.rules


def test_evidence_older_than_retention_is_dropped() -> None:
    cfg = config_from_mapping({"retention": {"evidence": "2d"}})
    old = [txn(f"A{i}", i * 60, card=f"tok_{i}") for i in range(5)]
    lines = [line(f"S{i}", f"A{i}", HOUR) for i in range(5)]
    r = run(
        *old, *lines, txn("B", 3 * DAY, card="tok_b"), line("SB", "B", 3 * DAY + 60), config=cfg
    )
    ms = r.engine.merchants["M1"]
    assert set(ms.txns) == {"B"}
    assert set(ms.settlements) == {"SB"}
    assert set(ms.lines) == {"B"}


def test_short_windows_are_swept_as_event_time_moves_on() -> None:
    events = [txn(f"A{i}", i * 60, card=f"tok_{i}", terminal=f"T{i}") for i in range(50)]
    # Two terminals move on together: one alone two days ahead would be a claim the partition
    # has not corroborated, and its time would move no watermark.
    r = run(
        *events,
        txn("C", 2 * DAY, card="tok_c", terminal="TC"),
        txn("B", 2 * DAY, card="tok_b", terminal="TB"),
    )
    rules = _transaction_rules(r)
    ms = rules.merchants["M1"]
    assert set(rules.velocity.cards) == {"tok_b", "tok_c"}
    assert sorted(key[0] for key in ms.sale_index) == ["tok_b", "tok_c"]
    assert set(ms.terminals) == {"TB", "TC"}
    assert set(ms.txns) == {"B", "C"}  # the sales duplicate charges can still read


def test_one_terminal_alone_ahead_sweeps_nothing() -> None:
    events = [txn(f"A{i}", i * 60, card=f"tok_{i}", terminal=f"T{i}") for i in range(50)]
    r = run(*events, txn("B", 2 * DAY, card="tok_b", terminal="TB"))
    assert len(_transaction_rules(r).velocity.cards) == 51
