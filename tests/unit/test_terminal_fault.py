from streams.events import Event
from tests.builders import MIN, run, txn


def attempts(
    statuses: str, start: float = 0, step: float = 30, terminal: str = "T1"
) -> list[Event]:
    """One attempt per letter: A approved, T timeout, D declined; fresh card each."""
    kinds = {"A": "APPROVED", "T": "TIMEOUT", "D": "DECLINED"}
    return [
        txn(
            f"{terminal}-{start}-{i}",
            start + i * step,
            status=kinds[c],
            card=f"tok_{start}_{i}",
            terminal=terminal,
        )
        for i, c in enumerate(statuses)
    ]


def test_five_attempts_with_half_timing_out_raise() -> None:
    r = run(*attempts("ATATT"))
    alert = r.one("TERMINAL_FAULT")
    assert alert.terminal_id == "T1"
    assert alert.details["timeouts"] == 3
    assert alert.details["attempts"] == 5
    assert alert.severity == "MEDIUM"


def test_four_attempts_all_timing_out_are_too_few() -> None:
    assert run(*attempts("TTTT")).final() == []


def test_below_half_timing_out_is_fine() -> None:
    assert run(*attempts("AATATAA")).final() == []


def test_timeouts_spread_over_more_than_ten_minutes_are_fine() -> None:
    assert run(*attempts("TATATATATA", step=3 * MIN)).final() == []


def test_recovery_resolves() -> None:
    events = attempts("TTTTT") + attempts("AA", start=30 * MIN)
    r = run(*events)
    history = [a.status for a in r.events if a.type == "TERMINAL_FAULT"]
    assert history == ["OPEN", "RESOLVED"]


def test_flapping_reopens_the_same_alert() -> None:
    events = (
        attempts("TTTTT")
        + attempts("AAAAAA", start=3 * MIN, step=5)
        + attempts("TTTTTTT", start=4 * MIN, step=5)
    )
    r = run(*events)
    tf = [a for a in r.events if a.type == "TERMINAL_FAULT"]
    assert len({a.alert_id for a in tf}) == 1
    assert [a.status for a in tf] == ["OPEN", "RESOLVED", "OPEN"]


def test_each_terminal_is_judged_on_its_own() -> None:
    mixed = []
    for i in range(6):
        mixed += attempts("T", start=i * 30, terminal=f"T{i}")
    assert run(*mixed).final() == []
