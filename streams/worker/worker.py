"""The stream worker's state and decisions around the engine: each owned partition's pipeline,
its journal and operators' cases, the card stages, and the timers' work.

Everything that decides what an alert is lives in ``PartitionPipeline`` and the engine; this
module moves bytes between Kafka and them:

- messages are read as raw bytes (no Faust records) and offered to their partition's pipeline;
  acknowledgement is manual (``stream.noack()``): an offset is acknowledged only once its message
  is journaled, so a crash never commits input that the journal does not hold;
- Faust flushes the producer (journal changelog, alerts, dead letters) before committing offsets;
- a partition's pipeline is rebuilt from the journal table the first time the worker sees that
  partition, and published alerts that might have been lost are published again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Coroutine, Iterator
from typing import Any

import faust
import msgspec
from faust.types import TP, EventT
from prometheus_client import CollectorRegistry

from streams.alerts import Alert, encode_alert, now_rfc3339
from streams.config import Config
from streams.engine.core import Engine
from streams.worker.acting import acting_for
from streams.worker.alertstore import AlertStore
from streams.worker.card_work import CardStages
from streams.worker.casebook import Casebook
from streams.worker.collector import CollectorPolicy
from streams.worker.contiguity import Admit, OffsetGuard
from streams.worker.end_offsets import ask_if_held, flush_when_idle, read_upto
from streams.worker.flow import MergeFlow
from streams.worker.gauges import refresh_gauges
from streams.worker.journal_table import JournalTable
from streams.worker.live_config import LiveConfig
from streams.worker.merge import FEEDBACK, PAYOUTS, SETTLEMENTS, SIDES, TRANSACTIONS, Grace
from streams.worker.metrics import Metrics
from streams.worker.modelwatch import ModelWatcher
from streams.worker.partition import InputPartition
from streams.worker.pipeline import Output, PartitionPipeline
from streams.worker.published import mark_published
from streams.worker.settings import WorkerSettings
from streams.worker.snapshots import SnapshotPolicy, SnapshotTable, SnapshotTaker
from streams.worker.takeover import Takeover, take_over
from streams.worker.transport import bytes_table, raw_topic, rewind

log = logging.getLogger("posguard.worker")

# Handled inputs acknowledged (and their journal entries written) at the latest every this many.
_BATCH = 500


class StreamWorker:
    """State of one worker process: a pipeline per assigned partition, and what they emitted."""

    def __init__(
        self,
        app: faust.App,
        settings: WorkerSettings,
        config: Config,
        live: LiveConfig | None = None,
    ) -> None:
        self.app = app
        self.live = live or LiveConfig()
        self.settings = settings
        self.config = config
        self.registry = CollectorRegistry(auto_describe=True)
        self.metrics = Metrics(self.registry)
        self.store = AlertStore(config.retention_us, config.case_sla_s)
        self.model = ModelWatcher(settings.model_file)
        self.model.poll()  # before any partition is built: every event is judged by the model
        self.metrics.model_loaded.set(1 if self.model.scorer is not None else 0)
        self.inputs: dict[int, InputPartition] = {}
        t = settings.topics
        self.names = (t.transactions, t.settlements, t.feedback, t.payouts)
        self._side = {
            t.transactions: TRANSACTIONS,
            t.settlements: SETTLEMENTS,
            t.feedback: FEEDBACK,
            t.payouts: PAYOUTS,
        }
        # Labelled children resolved once, and fed in sums (``count_arrivals``): a Prometheus
        # counter takes a lock on every increment, which cost more per message than the count.
        self._events_in = tuple(self.metrics.events_in.labels(name) for name in self.names)
        self._arrived = [0] * len(SIDES)
        self._consumed = 0
        self._last_input = time.monotonic()
        self.collector = CollectorPolicy()
        self.grace_s = settings.merge_grace_ms / 1000
        self._active_grace_s = settings.merge_active_grace_ms / 1000
        self._idle_s = settings.idle_flush_ms / 1000
        self.flow = MergeFlow(lambda: app.consumer)
        self.guard = OffsetGuard()
        self._tasks: set[asyncio.Future[None]] = set()
        """Seeks and end-offset questions in flight (kept referenced until done)."""
        self.input_topic = raw_topic(app, settings.partitions, *self.names)
        self.alerts_topic = raw_topic(app, settings.partitions, t.alerts)
        self.dead_topic = raw_topic(app, settings.partitions, t.deadletter)
        # Approved sales keyed by card, for card velocity across partitions (cards.py).
        self.cards_topic = raw_topic(app, settings.partitions, settings.cards_topic)
        # Named "acks" since acknowledgements, the first thing kept there: existing ones read.
        self.case_table = bytes_table(
            app,
            settings.partitions,
            "acks",
            "Operators' cases (their histories) by alert id, in the partition of the alert",
        )
        self.cases = Casebook(
            self.case_table,
            self.store,
            self.alerts_topic,
            raw_topic(app, settings.partitions, t.feedback),
            config.case_sla_s,
        )
        self.lag_series: deque[tuple[int, float]] = deque(maxlen=1800)
        self.dead_series: deque[list[int]] = deque(maxlen=1440)
        self.journal = bytes_table(
            app,
            settings.partitions,
            "journal",
            "Per partition, what the engine was fed, in order (see streams/worker/journal.py)",
        )
        self._value_budget = settings.value_budget
        self.journals = JournalTable(self.journal, "partition", self._value_budget)
        self.snapshots = SnapshotTable(
            bytes_table(
                app,
                settings.partitions,
                "snapshots",
                "Per partition, the engine's newest snapshot (see streams/worker/snapshots.py)",
            ),
            self._value_budget,
            SnapshotPolicy(settings.snapshot_every_entries, settings.snapshot_every_s),
        )
        self.taker = SnapshotTaker(settings.data_dir / "snapshots")
        self.takeovers: dict[int, Takeover] = {}
        self.card_journal = bytes_table(
            app,
            settings.partitions,
            "cards",
            "Per card partition, the sales the velocity rule ran, in order (cards.py)",
        )
        self.cards = CardStages(
            app,
            settings.partitions,
            config,
            self.cards_topic,
            JournalTable(self.card_journal, "card partition", self._value_budget),
            self.guard,
            _BATCH,
            self._admit,
            self._publish,
            self.cases.restore,
            self.live.known,
        )

    # -- messages ---------------------------------------------------------------------------------

    def on_message(self, event: EventT[bytes]) -> None:
        message = event.message
        side = self._side[message.topic]
        p = message.partition
        part = self.inputs.get(p) or self._rebuild(p)
        if not self._admit(message.topic, p, (p, side), message.offset):
            return
        part.fed = True
        self._last_input = part.input_at = now = time.monotonic()
        self._arrived[side] += 1
        part.seen[side] = message.offset
        part.waiting[side][message.offset] = (event, now)
        pipe = part.pipeline
        pipe.offer(side, message.offset, message.value or b"", now)
        self.flow.offered(message.topic, p, pipe.buffered(side))
        self.release(p, part, now)

    def release(self, p: int, part: InputPartition, now: float) -> None:
        """Feed partition ``p``'s engine what became certain, and carry out what it decided."""
        pipe = part.pipeline
        pipe.release(lambda s: self._caught_up(p, part, s), self._grace(now, part))
        self.carry_out(p, part, pipe.take())

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background, referenced until it is done."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _admit(self, topic: str, partition: int, key: tuple[int, int], offset: int) -> bool:
        """Whether to handle this message: one past a hole is dropped and the consumer rewound
        to the hole (``contiguity.py``)."""
        verdict = self.guard.admit(key, offset)
        if verdict is Admit.TAKE:
            if self.guard.skipped:
                for _, hole in self.guard.skipped:
                    log.warning(
                        "%s[%d]: offsets %d..%d are not in the log (read again %d times); "
                        "going on from %d",
                        topic, partition, hole.first, hole.last, hole.seeks, hole.last + 1,
                    )  # fmt: skip
                self.guard.skipped.clear()
            return True
        if verdict is Admit.SEEK:
            expected = self.guard.expected(key)
            assert expected is not None
            log.warning(
                "%s[%d]: offset %d was delivered before %d..%d; reading again from %d",
                topic, partition, offset, expected, offset - 1, expected,
            )  # fmt: skip
            self.metrics.rewinds.labels(topic).inc()
            self.spawn(self._seek(TP(topic, partition), expected, key))
        return False

    async def _seek(self, tp: TP, offset: int, key: tuple[int, int]) -> None:
        try:
            await rewind(self.app, tp, offset)
        except Exception:
            log.exception("%s[%d]: seek to %d failed; asking again", tp.topic, tp.partition, offset)
            self.guard.seek_failed(key)
        else:
            self.guard.sought(key)

    def count_arrivals(self) -> None:
        """Add the messages received since the last call to the input counters."""
        for side, n in enumerate(self._arrived):
            if n:
                self._events_in[side].inc(n)
                self._consumed += n
                self._arrived[side] = 0

    def events_in_total(self) -> int:
        """Input messages consumed since start, every input topic."""
        self.count_arrivals()
        return self._consumed

    def assigned_partitions(self) -> list[int]:
        """The input partitions the consumer group gave this worker."""
        return sorted(
            tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.names[0]
        )

    def quiet_since(self, now: float) -> float:
        """Partitions whose last input arrived no later than this are idle."""
        return now - self._idle_s

    def idle_seconds(self) -> float:
        """How long no input message arrived."""
        return time.monotonic() - self._last_input

    def _grace(self, now: float, part: InputPartition) -> Grace:
        return Grace(now, self.grace_s, self._active_grace_s, part.confirmed)

    def _caught_up(self, p: int, part: InputPartition, side: int) -> bool:
        hw = self.app.consumer.highwater(TP(self.names[side], p))
        if hw is None:
            return False
        return read_upto(part, side) >= hw

    def carry_out(self, p: int, part: InputPartition, out: Output) -> None:
        if out.journal:
            part.unwritten.extend(out.journal)
        if out.trim_below is not None:
            self.journals.trim(p, out.trim_below)
        if out.sales:
            part.unsent.extend(out.sales)
        self._publish(p, out.alerts, out.restored)
        if out.dead_letters:
            minute = int(time.time()) // 60 * 60
            if not self.dead_series or self.dead_series[-1][0] != minute:
                self.dead_series.append([minute, 0])
            self.dead_series[-1][1] += len(out.dead_letters)
        for letter in out.dead_letters:
            self.metrics.dead_letters.labels(letter.reason).inc()
            self.dead_topic.send_soon(key=None, value=msgspec.json.encode(letter))
        if out.done:
            part.unacked.extend(out.done)
            if len(part.unacked) >= _BATCH:
                self.write_journal(p, part)

    def _publish(self, p: int, alerts: list[Alert], restored: list[Alert]) -> None:
        """Alerts of partition ``p`` (input or card partition) to the alerts topic and the
        worker's view; ``restored`` ones are already on the topic."""
        if alerts or restored:
            detected = now_rfc3339()
            for alert in restored:
                self.store.apply(alert, detected, p)
            for alert in alerts:
                is_new = self.store.get(alert.alert_id) is None
                self.store.apply(alert, detected, p)
                self.metrics.on_alert(alert, is_new)
                self.alerts_topic.send_soon(
                    key=alert.alert_id.encode(), value=encode_alert(alert, detected)
                )
                self.cases.record(alert, is_new)
            if self.store.pruned:
                self.cases.forget_pruned()

    def write_journal(self, p: int, part: InputPartition, idle: bool = False) -> None:
        """Append the partition's unwritten entries in batches, send the sales they made to
        the card stages (``idle``: the partition has read everything and closed its last step),
        then acknowledge the inputs they cover (Faust flushes the changelog before it commits
        their offsets)."""
        if part.unwritten:
            entries, part.unwritten = part.unwritten, []
            self.journals.append(p, entries)
        self._send_sales(p, part, idle)
        if part.unacked:
            done, part.unacked = part.unacked, []
            now = time.monotonic()
            observe = self.metrics.latency.observe
            for side, offset in done:
                item = part.waiting[side].pop(offset, None)
                if item is not None:
                    event, arrived = item
                    observe(now - arrived)
                    event.ack()

    def _send_sales(
        self, p: int, part: InputPartition, idle: bool = False, force: bool = False
    ) -> None:
        for q, batch in part.card_batches(
            p, self.settings.partitions, self._value_budget, idle, force
        ):
            self.cards_topic.send_soon(key=b"%d" % p, value=batch, partition=q)

    # -- partitions -------------------------------------------------------------------------------

    def _rebuild(self, p: int) -> InputPartition:
        """Partition ``p`` with its pipeline restored from its snapshot and journal tables
        (recovered by Faust before any message of the partition is delivered)."""
        pipe = PartitionPipeline(p, self.config, self.names, self.model.scorer, self.live.known())
        part = InputPartition(pipe)
        # Card stages wait for this partition while its engine is rebuilt (it is not idle).
        self._send_sales(p, part, idle=False, force=True)
        self.takeovers[p] = take_over(p, pipe, self.journals, self.snapshots)
        pipe.engine.patterns.on_scored = self._on_scored  # the rebuild above is not observed
        for side in SIDES:
            if pipe.next_offset(side):  # the journal holds input of this side up to there
                self.guard.expect((p, side), pipe.next_offset(side))
        self.inputs[p] = part
        self.carry_out(p, part, pipe.take())
        self.cases.restore(p)
        return part

    def on_card_batch(self, event: EventT[bytes]) -> None:
        """A batch of sales for one of the card partitions (``card_work.py``)."""
        self.cards.on_batch(event)

    def _on_scored(self, _t: Any, _row: list[float], score: float | None) -> None:
        if score is not None:
            self.metrics.model_score.observe(score)

    async def reload_model(self) -> None:
        """Pick up a new model file; every partition's engine scores with it from now on."""
        loop = asyncio.get_running_loop()
        if await loop.run_in_executor(None, self.model.poll):
            for engine in self.engines():
                engine.patterns.set_scorer(self.model.scorer)
        self.metrics.model_loaded.set(1 if self.model.scorer is not None else 0)

    def engines(self) -> Iterator[Engine]:
        return (part.pipeline.engine for part in self.inputs.values())

    def _buffered_of(self, tp: TP) -> int | None:
        part = self.inputs.get(tp.partition)
        side = self._side.get(tp.topic)
        return None if part is None or side is None else part.pipeline.buffered(side)

    def on_revoked(self, revoked: set[TP]) -> None:
        """Forget partitions another worker now owns; unacknowledged input is read again there."""
        self.flow.forget(revoked)
        for p in {tp.partition for tp in revoked if tp.topic in self.names}:
            self.inputs.pop(p, None)
            self.journals.forget(p)
            self.snapshots.forget(p)
            self.taker.cancel(p)
            for side in SIDES:
                self.guard.forget((p, side))
        for q in {tp.partition for tp in revoked if tp.topic == self.cards_topic.get_topic_name()}:
            self.cards.forget(q)

    # -- timers -----------------------------------------------------------------------------------

    def tick(self) -> None:
        """Release what became certain without new input; write pending journal batches."""
        self.count_arrivals()
        now = time.monotonic()
        for p, part in list(self.inputs.items()):
            if not part.fed:
                continue
            with acting_for(p):
                self.release(p, part, now)
                ask_if_held(self, p, part, now)
                self.write_journal(p, part)
        self.flow.drained(self._buffered_of)
        self.cards.tick(now)

    async def flush_when_idle(self) -> None:
        await flush_when_idle(self)

    async def mark_published(self) -> None:
        await mark_published(self)

    def refresh_gauges(self) -> None:
        refresh_gauges(self)
