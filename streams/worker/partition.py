"""What the worker holds for one partition it owns: one object each, so that taking a partition
is building one and losing it is one removal (Kafka Streams' and quix-streams' per-task state)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from faust.types import EventT

from streams.worker.cards import CardStage, Sale, card_partition, encode_batch, sale_batches
from streams.worker.merge import NEVER, SIDES
from streams.worker.pipeline import PartitionPipeline


@dataclass(eq=False)
class InputPartition:
    """An input partition: its pipeline (engine, merge, journal cursor) and what is on its way
    between the consumer, the journal, the card stages and the offset commits."""

    pipeline: PartitionPipeline
    fed: bool = False
    """A message arrived since the partition was assigned (timers skip the others)."""
    input_at: float = 0.0
    """When its last input message arrived (monotonic)."""
    confirmed: tuple[float, ...] = NEVER
    """Per side, when the broker last said that side had nothing unread."""
    asking: bool = False
    """An end-offset question to the broker is in flight."""
    seen: list[int] = field(default_factory=lambda: [-1] * len(SIDES))
    """Per side, the last offset delivered."""
    waiting: tuple[dict[int, tuple[EventT[bytes], float]], ...] = field(
        default_factory=lambda: tuple({} for _ in SIDES)
    )
    """Per side, delivered messages not yet acknowledged, with when they arrived."""
    unwritten: list[tuple[int, bytes]] = field(default_factory=list)
    """Journal entries not yet appended to the journal table."""
    unacked: list[tuple[int, int]] = field(default_factory=list)
    """(side, offset) whose journal entries are made: acknowledged once written."""
    unsent: list[Sale] = field(default_factory=list)
    """Sales journaled but not yet sent to the card stages."""
    clock_sent: dict[int, tuple[int, bool]] = field(default_factory=dict)
    """Per card partition, the clock and idle flag last sent to it."""

    def card_batches(
        self, p: int, partitions: int, value_budget: int, idle: bool, force: bool
    ) -> Iterator[tuple[int, bytes]]:
        """(card partition, encoded batch) taking this partition's (``p``) journaled sales to
        their card partitions, with its clock; a card partition that gets no sale gets the
        clock when it (or ``idle``) changed, every one of them with ``force``."""
        clock = self.pipeline.engine.clock
        sales, self.unsent = self.unsent, []
        if clock is None and not sales and not force:
            return
        by_target: dict[int, list[Sale]] = {}
        for sale in sales:
            by_target.setdefault(card_partition(sale.card_token, partitions), []).append(sale)
        state = (clock if clock is not None else -(2**63), idle)
        for q in range(partitions):
            mine = by_target.get(q)
            if not (mine or force) and self.clock_sent.get(q) == state:
                continue
            self.clock_sent[q] = state
            for batch in sale_batches(p, state[0], idle, mine or [], value_budget):
                yield q, encode_batch(batch)

    def said_idle(self, partitions: int) -> bool:
        """Every card partition was last told this partition is idle."""
        return all(self.clock_sent.get(q, (0, False))[1] for q in range(partitions))


@dataclass(eq=False)
class CardPartition:
    """A card partition: its velocity stage and the sale batches not yet acknowledged."""

    stage: CardStage
    waiting: dict[int, list[Any]] = field(default_factory=dict)
    """By offset: [the message, how many of its sales have not run yet]."""
    unwritten: list[tuple[int, bytes]] = field(default_factory=list)
    unacked: list[EventT[bytes]] = field(default_factory=list)
