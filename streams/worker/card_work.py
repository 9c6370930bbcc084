"""The card partitions a worker owns: card velocity behind the repartition by card.

Each gets batches of approved sales (and clocks) from every input partition on the card topic,
runs them through its ``CardStage`` (``cards.py``) in event-time order, journals the sales it ran
and acknowledges a message once every sale in it has run and is journaled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import faust
import msgspec
from faust.types import TP, EventT

from streams.alerts import Alert
from streams.config import Config
from streams.config_log import LiveVersion
from streams.worker.acting import acting_for
from streams.worker.cards import CardStage, decode_batch
from streams.worker.contiguity import OffsetGuard
from streams.worker.journal_table import JournalTable
from streams.worker.partition import CardPartition
from streams.worker.transport import committed_offset

log = logging.getLogger("posguard.worker")

CARD_GRACE_S = 0.25
"""How long a sale waits in a card stage for a source partition that is idle before it goes
ahead; a partition that is behind is waited for however long."""
CARD_UNHEARD_GRACE_S = 5.0
"""How long a sale waits for a source partition that never sent anything: one without traffic,
or one whose worker has not read its first message yet (seconds, on a loaded machine)."""
CARDS = 2
"""The offset guard's key for a card partition is (partition, CARDS); inputs use (partition,
side). A rebuilt card stage expects the committed offset (its journal keeps sales, not offsets)."""
_MAX_PARTITIONS = 100_000
"""More input partitions than any deployment has: a larger source number is no worker's batch."""

Admit = Callable[[str, int, tuple[int, int], int], bool]
Publish = Callable[[int, list[Alert], list[Alert]], None]


class CardStages:
    """The owned card partitions (``owned``), each one ``CardPartition``."""

    def __init__(
        self,
        app: faust.App,
        partitions: int,
        config: Config,
        topic: Any,
        journals: JournalTable,
        guard: OffsetGuard,
        batch: int,
        admit: Admit,
        publish: Publish,
        restored: Callable[[int], None],
        versions: Callable[[], list[LiveVersion]] = list,
    ) -> None:
        """``admit`` says whether to handle a message (the worker's offset guard), ``publish``
        sends a partition's alerts, ``restored`` reapplies operators' acknowledgements of a
        rebuilt partition's alerts."""
        self.app = app
        self.partitions = partitions
        self.config = config
        self.topic = topic
        self.journals = journals
        self.guard = guard
        self.batch = batch
        self._admit = admit
        self._publish = publish
        self._restored = restored
        self._versions = versions
        self.owned: dict[int, CardPartition] = {}

    def on_batch(self, event: EventT[bytes]) -> None:
        """A batch of sales (and a clock) from one input partition, for card partition q."""
        message = event.message
        q = message.partition
        card = self.owned.get(q) or self._rebuild(q)
        if not self._admit(message.topic, q, (q, CARDS), message.offset):
            return
        now = time.monotonic()
        try:
            batch = decode_batch(message.value or b"")
            if not 0 <= batch.source < _MAX_PARTITIONS:
                raise ValueError(f"source partition {batch.source}")
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            # Only workers write this topic; something else did. Not input to dead-letter.
            log.warning(
                "card partition %d offset %d: not a sale batch (%s)", q, message.offset, exc
            )
            event.ack()
            return
        new = card.stage.offer(batch, message.offset, now)
        if new:
            card.waiting[message.offset] = [event, new]
        else:  # only a clock, or sales the stage already holds
            event.ack()
        card.stage.release(now, CARD_GRACE_S, CARD_UNHEARD_GRACE_S)
        self._carry_out(q, card)

    def tick(self, now: float) -> None:
        """Release what became certain without new input; write pending journal batches."""
        for q, card in list(self.owned.items()):
            with acting_for(q):
                card.stage.release(now, CARD_GRACE_S, CARD_UNHEARD_GRACE_S)
                self._carry_out(q, card)
                self.write(q, card)

    def unpublished(self) -> dict[int, int]:
        """Per card partition, the journal sequence number past the last one marked published."""
        return {
            q: card.stage.cursor.seq
            for q, card in self.owned.items()
            if card.stage.cursor.seq > self.journals.published.get(q, 0)
        }

    def mark_published(self, upto: dict[int, int]) -> None:
        for q, seq in upto.items():
            if q in self.owned:
                with acting_for(q):
                    self.journals.mark_published(q, seq)

    def forget(self, q: int) -> None:
        self.owned.pop(q, None)
        self.journals.forget(q)
        self.guard.forget((q, CARDS))

    def buffered(self) -> int:
        return sum(card.stage.buffered() for card in self.owned.values())

    def write(self, q: int, card: CardPartition) -> None:
        """Append the stage's unwritten entries, then acknowledge the messages whose sales
        they all hold."""
        if card.unwritten:
            entries, card.unwritten = card.unwritten, []
            self.journals.append(q, entries)
        if card.unacked:
            done, card.unacked = card.unacked, []
            for event in done:
                event.ack()

    def _carry_out(self, q: int, card: CardPartition) -> None:
        out = card.stage.take()
        if out.journal:
            card.unwritten.extend(out.journal)
        if out.trim_below is not None:
            self.journals.trim(q, out.trim_below)
        self._publish(q, out.alerts, out.restored)
        if out.released:
            waiting, unacked = card.waiting, card.unacked
            for token in out.released:
                item = waiting.get(token)
                if item is not None:
                    item[1] -= 1
                    if not item[1]:  # every sale of the message ran
                        del waiting[token]
                        unacked.append(item[0])
            if len(unacked) >= self.batch:
                self.write(q, card)

    def _rebuild(self, q: int) -> CardPartition:
        stage = CardStage(q, self.partitions, self.config, self._versions())
        entries = self.journals.load(q)
        if entries:
            started = time.perf_counter()
            stage.restore(entries, self.journals.published[q])
            log.warning(
                "card partition %d: velocity rebuilt from %d journal entries in %.1f s",
                q,
                len(entries),
                time.perf_counter() - started,
            )
        card = self.owned[q] = CardPartition(stage)
        # Its journal keeps sales, not offsets; but everything below the committed offset is in
        # it, so a first message past that offset is one past a hole (contiguity.py).
        committed = committed_offset(self.app, TP(self.topic.get_topic_name(), q))
        if committed:
            self.guard.expect((q, CARDS), committed)
        self._carry_out(q, card)
        self._restored(q)
        return card
