"""The offset guard: no message is handled past a hole the consumer left, and real holes pass."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.worker.contiguity import MAX_SEEKS, STALE_LIMIT, Admit, OffsetGuard, Skipped

K = ("t", 0)


def _seeking_at_a_hole() -> OffsetGuard:
    """A guard expecting offset 4 that was handed 9: it has asked for a seek back to 4."""
    guard = OffsetGuard()
    guard.expect(K, 4)
    assert guard.admit(K, 9) is Admit.SEEK
    return guard


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
    guard = _seeking_at_a_hole()
    guard.sought(K)
    assert guard.admit(K, 9) is Admit.SEEK  # once could be another seek landing there
    guard.sought(K)
    assert guard.admit(K, 9) is Admit.TAKE  # twice: 4..8 are not in the log
    assert guard.skipped == [(K, Skipped(4, 8, 2))]
    assert guard.admit(K, 10) is Admit.TAKE


def test_the_batch_read_before_the_seek_is_dropped_without_asking_again() -> None:
    guard = _seeking_at_a_hole()
    guard.sought(K)
    # Faust's buffers still hold what was fetched before the seek: later and later offsets.
    assert [guard.admit(K, o) for o in (12, 13, 20)] == [Admit.IGNORE] * 3
    assert [guard.admit(K, o) for o in (4, 5)] == [Admit.TAKE] * 2
    assert guard.skipped == []


def test_a_seek_that_lands_elsewhere_is_asked_for_again() -> None:
    guard = _seeking_at_a_hole()
    guard.sought(K)
    assert guard.admit(K, 10) is Admit.IGNORE
    assert guard.admit(K, 7) is Admit.SEEK  # another seek (to committed offsets) put it at 7
    guard.sought(K)
    assert guard.admit(K, 8) is Admit.IGNORE  # from before this seek
    assert guard.admit(K, 4) is Admit.TAKE
    assert guard.skipped == []


def test_a_consumer_that_keeps_skipping_is_followed_after_max_seeks() -> None:
    guard = OffsetGuard()
    guard.expect(K, 0)
    offset = 100
    assert guard.admit(K, offset) is Admit.SEEK
    verdicts: list[Admit] = []
    while not verdicts or verdicts[-1] is not Admit.TAKE:
        guard.sought(K)
        offset += 1
        verdicts.append(guard.admit(K, offset))
        while verdicts[-1] is Admit.IGNORE:  # none of its seeks ever takes effect
            offset += 1
            verdicts.append(guard.admit(K, offset))
    assert verdicts.count(Admit.SEEK) == MAX_SEEKS - 1
    assert verdicts.count(Admit.IGNORE) == MAX_SEEKS * (STALE_LIMIT - 1)
    assert guard.skipped == [(K, Skipped(0, offset - 1, MAX_SEEKS))]


def test_a_failed_seek_is_asked_for_again() -> None:
    guard = _seeking_at_a_hole()
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
        st.tuples(st.sampled_from(["read", "skip", "lag", "early"]), st.integers(1, 30)),
        max_size=80,
    ),
)
def test_a_consumer_that_skips_and_seeks_late_still_gives_every_offset_in_order(
    n: int, steps: list[tuple[str, int]]
) -> None:
    """A live log read by a consumer that now and then jumps ahead (a batch abandoned) and
    carries out seeks only some reads later (``lag``: stale records still in flight), reporting
    a seek done while some of them are still to come (``early``): the offsets taken for the
    first time are 0, 1, 2, ... in order, none left out."""
    guard = OffsetGuard()
    guard.expect(K, 0)
    position, pending_seek, lag, early, notified, landed = 0, None, 0, 0, False, False
    taken: list[int] = []
    script = iter(steps)
    for _ in range(40 * n + 400):
        if len(taken) >= n:
            break
        action, k = next(script, ("read", 1))
        if pending_seek is not None:
            if not notified and lag <= early:
                guard.sought(K)
                notified = True
            if lag <= 0:
                position, pending_seek, landed = pending_seek, None, True
        lag -= 1
        if action == "skip" and not landed:  # a seek is read from where it went
            position += k
            continue
        if action == "lag" and pending_seek is not None:
            lag += k
        if action == "early" and pending_seek is not None and not notified:
            early += k
        landed = False
        verdict = guard.admit(K, position)
        if verdict is Admit.TAKE and position >= len(taken):
            taken.append(position)
        elif verdict is Admit.SEEK:
            pending_seek, lag, early, notified = guard.expected(K), 0, 0, False
        position += 1
    assert taken[:n] == list(range(n))
    assert guard.skipped == []
