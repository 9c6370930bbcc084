"""The offset guard: no message is handled past a hole the consumer left, and real holes pass."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.worker.contiguity import MAX_SEEKS, Admit, OffsetGuard, Skipped

K = ("t", 0)


def test_without_an_expectation_the_first_offset_sets_it() -> None:
    guard = OffsetGuard()
    assert guard.admit(K, 7) is Admit.TAKE
    assert guard.expected(K) == 8
    assert guard.admit(K, 8) is Admit.TAKE
    assert guard.admit(K, 10) is Admit.SEEK
    assert guard.expected(K) == 9


def test_a_message_past_a_hole_waits_for_the_seek_and_the_hole_is_read_first() -> None:
    guard = OffsetGuard()
    guard.expect(K, 4)
    assert guard.admit(K, 144) is Admit.SEEK
    assert guard.admit(K, 145) is Admit.IGNORE  # the rest of the batch, before the seek lands
    guard.sought(K)
    assert [guard.admit(K, o) for o in (4, 5, 6)] == [Admit.TAKE] * 3
    assert guard.expected(K) == 7
    assert guard.skipped == []


def test_messages_delivered_again_are_taken_and_the_expectation_stays() -> None:
    guard = OffsetGuard()
    guard.expect(K, 10)
    assert guard.admit(K, 3) is Admit.TAKE
    assert guard.expected(K) == 10


def test_a_hole_that_is_in_the_log_for_good_is_taken_once_two_seeks_lead_back() -> None:
    guard = OffsetGuard()
    guard.expect(K, 4)
    assert guard.admit(K, 9) is Admit.SEEK
    guard.sought(K)
    assert guard.admit(K, 9) is Admit.SEEK  # once could be another seek landing there
    guard.sought(K)
    assert guard.admit(K, 9) is Admit.TAKE  # twice: 4..8 are not in the log
    assert guard.skipped == [(K, Skipped(4, 8, 2))]
    assert guard.admit(K, 10) is Admit.TAKE


def test_a_stale_message_after_the_seek_asks_for_another_seek() -> None:
    guard = OffsetGuard()
    guard.expect(K, 4)
    assert guard.admit(K, 9) is Admit.SEEK
    guard.sought(K)
    assert guard.admit(K, 12) is Admit.SEEK
    assert guard.admit(K, 13) is Admit.IGNORE
    guard.sought(K)
    assert guard.admit(K, 4) is Admit.TAKE


def test_a_consumer_that_keeps_skipping_is_followed_after_max_seeks() -> None:
    guard = OffsetGuard()
    guard.expect(K, 0)
    offset = 100
    assert guard.admit(K, offset) is Admit.SEEK
    for _ in range(MAX_SEEKS - 1):
        guard.sought(K)
        offset += 1
        assert guard.admit(K, offset) is Admit.SEEK
    guard.sought(K)
    assert guard.admit(K, offset + 1) is Admit.TAKE
    assert guard.skipped == [(K, Skipped(0, offset, MAX_SEEKS))]


def test_a_failed_seek_is_asked_for_again() -> None:
    guard = OffsetGuard()
    guard.expect(K, 4)
    assert guard.admit(K, 9) is Admit.SEEK
    guard.seek_failed(K)
    assert guard.admit(K, 10) is Admit.SEEK


def test_keys_are_independent_and_forget_drops_the_expectation() -> None:
    guard = OffsetGuard()
    guard.expect(("t", 0), 5)
    guard.expect(("t", 1), 50)
    assert guard.admit(("t", 1), 50) is Admit.TAKE
    assert guard.admit(("t", 0), 6) is Admit.SEEK
    guard.forget(("t", 0))
    assert guard.admit(("t", 0), 6) is Admit.TAKE


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 60),
    steps=st.lists(
        st.tuples(st.sampled_from(["read", "skip", "lag"]), st.integers(1, 8)), max_size=80
    ),
)
def test_a_consumer_that_skips_and_seeks_late_still_gives_every_offset_in_order(
    n: int, steps: list[tuple[str, int]]
) -> None:
    """A live log read by a consumer that now and then jumps ahead (a batch abandoned) and
    carries out seeks only some reads later (stale records still in flight): the offsets taken
    for the first time are 0, 1, 2, ... in order, none left out."""
    guard = OffsetGuard()
    guard.expect(K, 0)
    position, pending_seek, lag, landed = 0, None, 0, False
    taken: list[int] = []
    script = iter(steps)
    for _ in range(40 * n + 400):
        if len(taken) >= n:
            break
        action, k = next(script, ("read", 1))
        if pending_seek is not None and lag <= 0:
            position, pending_seek, landed = pending_seek, None, True
            guard.sought(K)
        lag -= 1
        if action == "skip" and not landed:  # a seek is read from where it went
            position += k
            continue
        if action == "lag" and pending_seek is not None:
            lag += k
        landed = False
        verdict = guard.admit(K, position)
        if verdict is Admit.TAKE and position >= len(taken):
            taken.append(position)
        elif verdict is Admit.SEEK:
            pending_seek = guard.expected(K)
            lag = 0
        position += 1
    assert taken[:n] == list(range(n))
    assert guard.skipped == []
