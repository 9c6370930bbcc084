"""What the worker holds for one partition it owns: one object each, so that taking a partition
is building one and losing it is one removal (Kafka Streams' and quix-streams' per-task state)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from faust.types import EventT

from streams.worker.cards import CardStage, Sale
from streams.worker.pipeline import PartitionPipeline

NEVER = (float("-inf"), float("-inf"))
"""A side the broker never said had nothing unread."""


@dataclass(eq=False)
class InputPartition:
    """An input partition: its pipeline (engine, merge, journal cursor) and what is on its way
    between the consumer, the journal, the card stages and the offset commits."""

    pipeline: PartitionPipeline
    fed: bool = False
    """A message arrived since the partition was assigned (timers skip the others)."""
    input_at: float = 0.0
    """When its last input message arrived (monotonic)."""
    confirmed: tuple[float, float] = NEVER
    """Per side, when the broker last said that side had nothing unread."""
    asking: bool = False
    """An end-offset question to the broker is in flight."""
    seen: list[int] = field(default_factory=lambda: [-1, -1])
    """Per side, the last offset delivered."""
    waiting: tuple[dict[int, tuple[EventT[bytes], float]], ...] = field(
        default_factory=lambda: ({}, {})
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


@dataclass(eq=False)
class CardPartition:
    """A card partition: its velocity stage and the sale batches not yet acknowledged."""

    stage: CardStage
    waiting: dict[int, list[Any]] = field(default_factory=dict)
    """By offset: [the message, how many of its sales have not run yet]."""
    unwritten: list[tuple[int, bytes]] = field(default_factory=list)
    unacked: list[EventT[bytes]] = field(default_factory=list)
