import heapq

from hypothesis import given
from hypothesis import strategies as st

from streams.engine.deadlines import Deadlines


@given(
    st.lists(st.tuples(st.integers(0, 50), st.sampled_from(["M1", "M2"]), st.text(max_size=2))),
    st.lists(st.integers(0, 60), max_size=5),
)
def test_pops_exactly_like_one_heap(entries: list[tuple[int, str, str]], cuts: list[int]) -> None:
    fast = Deadlines()
    heap: list[tuple[int, str, str]] = []
    for entry in entries:
        fast.push(entry)
        heapq.heappush(heap, entry)
    for cut in [*sorted(cuts), 10**9]:
        expected: list[tuple[int, str, str]] = []
        while heap and heap[0][0] < cut:
            expected.append(heapq.heappop(heap))
        assert fast.due(cut) == bool(expected)
        assert list(fast.pop_due(cut)) == expected
    assert len(fast) == 0
