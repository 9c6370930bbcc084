"""Short garbage-collector pauses in a long-running worker.

CPython's cyclic collector now and then traverses every tracked container of the oldest generation.
In the worker that means Faust's and aiokafka's objects plus the engine's growing state: such full
collections took 80-130 ms in the streaming benchmark (a few every minute at full load), and every
alert emitted behind one waited for it. Reference counting frees nearly everything here anyway;
the collector only exists for cycles.

Policy: every second (``tick``), what is alive is moved out of the collector's sight
(``gc.freeze``), so a collection only traverses what was allocated since the last tick. Cyclic
garbage that was still alive when frozen is not lost for good: once the inputs have been idle for a
moment, at most every ``full_every_s`` (and after ``force_after_s`` even without a pause in the
input), everything is unfrozen and collected in one full pass.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class CollectorPolicy:
    full_every_s: float = 60.0
    """Least time between two full collections, taken while the inputs are idle."""
    force_after_s: float = 600.0
    """A full collection happens after this long even if the inputs never pause."""
    clock: Callable[[], float] = time.monotonic
    last_full: float = 0.0
    full_collections: int = 0
    collected: int = 0
    """Unreachable objects found by the full collections so far."""

    def start(self) -> None:
        """Once the worker is built: everything imported and constructed so far is frozen."""
        gc.collect()
        gc.freeze()
        self.last_full = self.clock()

    def tick(self, idle_s: float) -> None:
        """Call about once a second; ``idle_s`` is how long no input arrived."""
        now = self.clock()
        since = now - self.last_full
        if since >= self.force_after_s or (since >= self.full_every_s and idle_s >= 1.0):
            gc.unfreeze()
            self.collected += gc.collect()
            self.full_collections += 1
            self.last_full = now
        gc.freeze()
