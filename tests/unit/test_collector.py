"""The worker's garbage-collector policy: frozen between ticks, cycles still reclaimed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from streams.worker.collector import CollectorPolicy


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()
    gc.collect()


def _frozen_cycle() -> weakref.ref[_Node]:
    """A reference cycle that is alive when frozen and garbage afterwards."""
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gc.freeze()
    return weakref.ref(a)


def test_a_tick_puts_what_is_alive_out_of_the_collectors_sight() -> None:
    clock = _Clock()
    policy = CollectorPolicy(clock=clock)
    policy.start()
    before = gc.get_freeze_count()
    kept = [[i] for i in range(1000)]  # new tracked containers
    policy.tick(idle_s=0.0)
    assert gc.get_freeze_count() >= before + len(kept)
    assert policy.full_collections == 0


def test_frozen_cycles_are_reclaimed_by_the_next_full_collection_when_input_pauses() -> None:
    clock = _Clock()
    policy = CollectorPolicy(full_every_s=60, force_after_s=600, clock=clock)
    policy.start()
    ref = _frozen_cycle()
    gc.collect()
    assert ref() is not None  # frozen: an ordinary collection does not see it
    clock.now += 30
    policy.tick(idle_s=5.0)  # too soon after the last full collection
    assert ref() is not None
    clock.now += 31
    policy.tick(idle_s=0.2)  # due, but the input is busy
    assert ref() is not None and policy.full_collections == 0
    policy.tick(idle_s=1.5)
    assert ref() is None
    assert policy.full_collections == 1 and policy.collected >= 2
    assert gc.get_freeze_count() > 0  # and frozen again afterwards


def test_a_full_collection_is_forced_when_the_input_never_pauses() -> None:
    clock = _Clock()
    policy = CollectorPolicy(full_every_s=60, force_after_s=600, clock=clock)
    policy.start()
    ref = _frozen_cycle()
    clock.now += 599
    policy.tick(idle_s=0.0)
    assert ref() is not None
    clock.now += 1
    policy.tick(idle_s=0.0)
    assert ref() is None and policy.full_collections == 1
