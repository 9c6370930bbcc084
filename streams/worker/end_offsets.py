"""The worker's questions to the broker about what is left to read.

A merge holds a record while the other topic might still have an earlier one (``merge.py``), and
an engine's open step stays open while more events of its time might be stored. Both ask the
broker for the partition's end offsets (not the consumer's last-fetched high watermarks, which
lag behind), and act only on an answer that is still true when it arrives: the partition is
still owned and no input came in meanwhile.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from faust.types import TP

from streams.worker.acting import acting_for
from streams.worker.merge import SIDES
from streams.worker.partition import InputPartition

if TYPE_CHECKING:
    from streams.worker.worker import StreamWorker

log = logging.getLogger("posguard.worker")


def read_upto(part: InputPartition, side: int) -> int:
    """Every offset of the partition's ``side`` below this one was read (delivered, or journaled
    before a restart)."""
    return max(part.seen[side] + 1, part.pipeline.next_offset(side))


def ask_if_held(worker: StreamWorker, p: int, part: InputPartition, now: float) -> None:
    """A record held past the short grace only because the other topic was active just now:
    ask the broker whether that topic has anything unread."""
    if part.asking:
        return
    sides = part.pipeline.held_back_by(now - worker.grace_s)
    if not sides:
        return
    part.asking = True
    worker.spawn(_confirm(worker, p, part, sides))


async def _confirm(
    worker: StreamWorker, p: int, part: InputPartition, sides: tuple[int, ...]
) -> None:
    tps = [TP(worker.names[side], p) for side in sides]
    asked = time.monotonic()
    try:
        ends = await worker.app.consumer.highwaters(*tps)
    except Exception:
        log.exception("%s[%d]: asking the broker for the end offset failed", tps[0].topic, p)
        return
    finally:
        part.asking = False
    if worker.inputs.get(p) is not part:
        return  # revoked meanwhile
    confirmed = list(part.confirmed)
    for side, tp in zip(sides, tps, strict=True):
        if tp in ends and read_upto(part, side) >= ends[tp]:
            confirmed[side] = asked
        # otherwise the rest of it is on its way
    if tuple(confirmed) == part.confirmed:
        return
    part.confirmed = tuple(confirmed)
    with acting_for(p):
        worker.release(p, part, time.monotonic())


async def flush_when_idle(worker: StreamWorker) -> None:
    """Per partition, close the engine's open step once both its inputs are idle and the broker
    confirms that nothing is left to read (so the last alerts of a burst do not wait for the next
    one), and tell the card stages the partition is idle."""
    partitions = worker.settings.partitions
    quiet = worker.quiet_since(time.monotonic())
    waiting = [
        (p, part)
        for p, part in worker.inputs.items()
        if part.fed
        and part.input_at <= quiet
        and (part.pipeline.engine.has_open_step or not part.said_idle(partitions))
    ]
    if not waiting:
        return
    names = worker.names
    tps = [TP(name, p) for p, _ in waiting for name in names]
    ends = await worker.app.consumer.highwaters(*tps)
    quiet = worker.quiet_since(time.monotonic())
    for p, part in waiting:
        if worker.inputs.get(p) is not part or part.input_at > quiet:
            continue  # gone, or input arrived while asking
        read_all = all(read_upto(part, side) >= ends.get(TP(names[side], p), 0) for side in SIDES)
        if read_all:
            with acting_for(p):
                part.pipeline.flush_idle()
                worker.carry_out(p, part, part.pipeline.take())
                worker.write_journal(p, part, idle=True)
