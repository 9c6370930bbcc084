"""The stream worker's state and decisions around the engine: each owned partition's pipeline,
its journal and acknowledgements, the card stages, and the timers' work.

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

from streams.alerts import Alert, encode_acknowledged, encode_alert, now_rfc3339
from streams.cardmask import mask_text
from streams.config import Config
from streams.engine.core import Engine
from streams.worker.acting import acting_for
from streams.worker.alertstore import AlertStore, to_json
from streams.worker.card_work import CardStages
from streams.worker.cards import (
    Sale,
    card_partition,
    encode_batch,
    sale_batches,
)
from streams.worker.collector import CollectorPolicy
from streams.worker.contiguity import Admit, OffsetGuard
from streams.worker.fleet import merchant_summaries
from streams.worker.flow import MergeFlow
from streams.worker.journal import decode_entry
from streams.worker.journal_table import JournalTable
from streams.worker.merge import SETTLEMENTS, TRANSACTIONS, Grace
from streams.worker.metrics import Metrics
from streams.worker.modelwatch import ModelWatcher
from streams.worker.partition import InputPartition
from streams.worker.pipeline import Output, PartitionPipeline
from streams.worker.settings import WorkerSettings
from streams.worker.transport import rewind

log = logging.getLogger("posguard.worker")

# Handled inputs acknowledged (and their journal entries written) at the latest every this many.
_BATCH = 500


class StreamWorker:
    """State of one worker process: a pipeline per assigned partition, and what they emitted."""

    def __init__(self, app: faust.App, settings: WorkerSettings, config: Config) -> None:
        self.app = app
        self.settings = settings
        self.config = config
        self.registry = CollectorRegistry(auto_describe=True)
        self.metrics = Metrics(self.registry)
        self.store = AlertStore(config.retention_us)
        self.model = ModelWatcher(settings.model_file)
        self.model.poll()  # before any partition is built: every event is judged by the model
        self.metrics.model_loaded.set(1 if self.model.scorer is not None else 0)
        self.inputs: dict[int, InputPartition] = {}
        t = settings.topics
        self.names = (t.transactions, t.settlements)
        self._side = {t.transactions: TRANSACTIONS, t.settlements: SETTLEMENTS}
        # Labelled children resolved once, and fed in sums (``count_arrivals``): a Prometheus
        # counter takes a lock on every increment, which cost more per message than the count.
        self._events_in = tuple(self.metrics.events_in.labels(name) for name in self.names)
        self._arrived = [0, 0]
        self._consumed = 0
        self._last_input = time.monotonic()
        self.collector = CollectorPolicy()
        self._grace_s = settings.merge_grace_ms / 1000
        self._active_grace_s = settings.merge_active_grace_ms / 1000
        self._idle_s = settings.idle_flush_ms / 1000
        self.flow = MergeFlow(lambda: app.consumer)
        self.guard = OffsetGuard()
        self._tasks: set[asyncio.Future[None]] = set()
        """Seeks and end-offset questions in flight (kept referenced until done)."""
        self.input_topic = self._raw_topic(*self.names)
        self.alerts_topic = self._raw_topic(t.alerts)
        self.dead_topic = self._raw_topic(t.deadletter)
        # Approved sales keyed by card, for card velocity across partitions (cards.py).
        self.cards_topic = self._raw_topic(settings.cards_topic)
        self.acks = self._bytes_table(
            "acks", "Operators' acknowledgements by alert id, in the partition of the alert"
        )
        self.lag_series: deque[tuple[int, float]] = deque(maxlen=1800)
        self.dead_series: deque[list[int]] = deque(maxlen=1440)
        self.journal = self._bytes_table(
            "journal",
            "Per partition, what the engine was fed, in order (see streams/worker/journal.py)",
        )
        self._value_budget = settings.value_budget
        self.journals = JournalTable(self.journal, "partition", self._value_budget)
        self.card_journal = self._bytes_table(
            "cards", "Per card partition, the sales the velocity rule ran, in order (cards.py)"
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
            self._restore_acks,
        )

    def _raw_topic(self, *names: str) -> Any:
        """Topics whose keys and values are bytes as they are (decoded by posguard itself)."""
        return self.app.topic(
            *names,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=self.settings.partitions,
        )

    def _bytes_table(self, name: str, help: str) -> Any:
        """A changelog-backed table of bytes, one partition per input partition."""
        return self.app.Table(
            name,
            key_type=bytes,
            value_type=bytes,
            partitions=self.settings.partitions,
            help=help,
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
        self._release(p, part, now)

    def _release(self, p: int, part: InputPartition, now: float) -> None:
        """Feed partition ``p``'s engine what became certain, and carry out what it decided."""
        pipe = part.pipeline
        pipe.release(lambda s: self._caught_up(p, part, s), self._grace(now, part))
        self._carry_out(p, part, pipe.take())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
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
            self._spawn(self._seek(TP(topic, partition), expected, key))
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
        """Input messages consumed since start, both topics."""
        self.count_arrivals()
        return self._consumed

    def assigned_partitions(self) -> list[int]:
        """The input partitions the consumer group gave this worker."""
        return sorted(
            tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.names[0]
        )

    def _quiet_since(self, now: float) -> float:
        """Partitions whose last input arrived no later than this are idle."""
        return now - self._idle_s

    def idle_seconds(self) -> float:
        """How long no input message arrived."""
        return time.monotonic() - self._last_input

    def _grace(self, now: float, part: InputPartition) -> Grace:
        return Grace(now, self._grace_s, self._active_grace_s, part.confirmed)

    def _ask_if_held(self, p: int, part: InputPartition, now: float) -> None:
        """A record held past the short grace only because the other topic was active just
        now: ask the broker whether that topic has anything unread (``merge.py``)."""
        if part.asking:
            return
        side = part.pipeline.held_back_by(now - self._grace_s)
        if side is None:
            return
        part.asking = True
        self._spawn(self._confirm(p, part, side))

    async def _confirm(self, p: int, part: InputPartition, side: int) -> None:
        tp = TP(self.names[side], p)
        asked = time.monotonic()
        try:
            ends = await self.app.consumer.highwaters(tp)
        except Exception:
            log.exception("%s[%d]: asking the broker for the end offset failed", tp.topic, p)
            return
        finally:
            part.asking = False
        if self.inputs.get(p) is not part or tp not in ends:
            return  # revoked meanwhile
        if self._read_upto(part, side) < ends[tp]:
            return  # the rest of it is on its way
        confirmed = list(part.confirmed)
        confirmed[side] = asked
        part.confirmed = (confirmed[0], confirmed[1])
        with acting_for(p):
            self._release(p, part, time.monotonic())

    def _caught_up(self, p: int, part: InputPartition, side: int) -> bool:
        hw = self.app.consumer.highwater(TP(self.names[side], p))
        if hw is None:
            return False
        return self._read_upto(part, side) >= hw

    @staticmethod
    def _read_upto(part: InputPartition, side: int) -> int:
        """Every offset of the partition's ``side`` below this one was read (delivered, or
        journaled before a restart)."""
        return max(part.seen[side] + 1, part.pipeline.next_offset(side))

    def _carry_out(self, p: int, part: InputPartition, out: Output) -> None:
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
                self._write_journal(p, part)

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

    def _write_journal(self, p: int, part: InputPartition, idle: bool = False) -> None:
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
        """Send partition ``p``'s journaled sales to their card partitions, with its clock; a
        card partition that gets no sale gets the clock when it (or ``idle``) changed."""
        clock = part.pipeline.engine.clock
        sales, part.unsent = part.unsent, []
        if clock is None and not sales and not force:
            return
        n = self.settings.partitions
        by_target: dict[int, list[Sale]] = {}
        for sale in sales or ():
            by_target.setdefault(card_partition(sale.card_token, n), []).append(sale)
        state = (clock if clock is not None else -(2**63), idle)
        for q in range(n):
            mine = by_target.get(q)
            if not (mine or force) and part.clock_sent.get(q) == state:
                continue
            part.clock_sent[q] = state
            for batch in sale_batches(p, state[0], idle, mine or [], self._value_budget):
                self.cards_topic.send_soon(key=b"%d" % p, value=encode_batch(batch), partition=q)

    def _said_idle(self, part: InputPartition) -> bool:
        return all(part.clock_sent.get(q, (0, False))[1] for q in range(self.settings.partitions))

    # -- partitions -------------------------------------------------------------------------------

    def _rebuild(self, p: int) -> InputPartition:
        """Partition ``p`` with its pipeline restored from the journal table (recovered by Faust
        before any message of the partition is delivered)."""
        pipe = PartitionPipeline(p, self.config, self.names, self.model.scorer)
        part = InputPartition(pipe)
        # Card stages wait for this partition while its engine is rebuilt (it is not idle).
        self._send_sales(p, part, idle=False, force=True)
        entries = self.journals.load(p)
        if entries:
            started = time.perf_counter()
            pipe.restore(
                ((seq, decode_entry(data)) for seq, data in entries), self.journals.published[p]
            )
            log.warning(
                "partition %d: engine rebuilt from %d journal entries in %.1f s",
                p,
                len(entries),
                time.perf_counter() - started,
            )
        pipe.engine.patterns.on_scored = self._on_scored  # the rebuild above is not observed
        for side in (TRANSACTIONS, SETTLEMENTS):
            if pipe.next_offset(side):  # the journal holds input of this side up to there
                self.guard.expect((p, side), pipe.next_offset(side))
        self.inputs[p] = part
        self._carry_out(p, part, pipe.take())
        self._restore_acks(p)
        return part

    def _restore_acks(self, p: int) -> None:
        for key, value in list(self.acks.data.items()):
            stored = self.store.get(key.decode())
            if stored is not None and stored.partition == p:
                self.store.acknowledge(stored.alert.alert_id, msgspec.json.decode(value))

    def on_card_batch(self, event: EventT[bytes]) -> None:
        """A batch of sales for one of the card partitions (``card_work.py``)."""
        self.cards.on_batch(event)

    def acknowledge(self, alert_id: str, by: str, note: str) -> dict[str, Any] | None:
        """Keep an operator's acknowledgement in the partition's changelog-backed table and
        publish it as an update of the alert."""
        stored = self.store.get(alert_id)
        if stored is None:
            return None
        ack = {"by": mask_text(by.strip())[:80], "at": now_rfc3339(), "note": mask_text(note)[:500]}
        key, value = alert_id.encode(), msgspec.json.encode(ack)
        with acting_for(stored.partition):
            self.acks.data[key] = value
        self.acks.send_changelog(stored.partition, key, value)
        self.store.acknowledge(alert_id, ack)
        self.alerts_topic.send_soon(
            key=key, value=encode_acknowledged(stored.alert, stored.detected_at, ack)
        )
        return to_json(stored)

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
            for side in (TRANSACTIONS, SETTLEMENTS):
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
                self._release(p, part, now)
                self._ask_if_held(p, part, now)
                self._write_journal(p, part)
        self.flow.drained(self._buffered_of)
        self.cards.tick(now)

    async def flush_when_idle(self) -> None:
        """Per partition, close the engine's open step once both its inputs are idle and the
        broker confirms that nothing is left to read (so the last alerts of a burst do not wait
        for the next one), and tell the card stages the partition is idle.

        The broker's end offsets are asked for, not the consumer's last-fetched high
        watermarks: a step must not be closed while more events of its timestamp are stored.
        """
        quiet = self._quiet_since(time.monotonic())
        waiting = [
            (p, part)
            for p, part in self.inputs.items()
            if part.fed
            and part.input_at <= quiet
            and (part.pipeline.engine.has_open_step or not self._said_idle(part))
        ]
        if not waiting:
            return
        tps = [TP(name, p) for p, _ in waiting for name in self.names]
        ends = await self.app.consumer.highwaters(*tps)
        quiet = self._quiet_since(time.monotonic())
        for p, part in waiting:
            if self.inputs.get(p) is not part or part.input_at > quiet:
                continue  # gone, or input arrived while asking
            read_all = all(
                self._read_upto(part, side) >= ends.get(TP(self.names[side], p), 0)
                for side in (TRANSACTIONS, SETTLEMENTS)
            )
            if read_all:
                with acting_for(p):
                    part.pipeline.flush_idle()
                    self._carry_out(p, part, part.pipeline.take())
                    self._write_journal(p, part, idle=True)

    async def mark_published(self) -> None:
        """Record, per partition, up to where every alert is known to be on the alerts topic
        and every journal entry in the changelog."""
        upto = {
            p: part.pipeline.seq
            for p, part in self.inputs.items()
            if part.pipeline.seq > self.journals.published.get(p, 0)
        }
        stage_upto = self.cards.unpublished()
        if not (upto or stage_upto):
            return
        for p in upto:
            with acting_for(p):
                self._write_journal(p, self.inputs[p])
        for q in stage_upto:
            with acting_for(q):
                self.cards.write(q, self.cards.owned[q])
        # After this flush every journal batch below ``seq`` is in the changelog too (and every
        # sale it made on the card topic): a rebuild re-sends only from the marker on.
        await self.app.producer.flush()
        for p, seq in upto.items():
            if p in self.inputs:
                with acting_for(p):
                    self.journals.mark_published(p, seq)
        self.cards.mark_published(stage_upto)

    def refresh_gauges(self) -> None:
        m = self.metrics
        m.paused.set(len(self.flow.paused))
        m.alerts_open.clear()
        for (kind, severity), n in self.store.open_by_type().items():
            m.alerts_open.labels(kind, severity).set(n)
        summaries = merchant_summaries(self.engines(), self.store.open_alerts())
        m.unsettled_minor.clear()
        m.at_risk_minor.clear()
        for s in summaries:
            for currency, amount in s.unsettled_minor.items():
                m.unsettled_minor.labels(currency).inc(amount)
            for currency, amount in s.at_risk_minor.items():
                m.at_risk_minor.labels(currency).inc(amount)
        gap = False
        lag = 0.0
        for engine in self.engines():
            feed = engine.feed
            gap |= feed.gap is not None
            tw, sw = feed.transaction_wm, feed.settlement_wm
            if tw is not None:
                m.watermark.labels("transactions").set(tw / 1e6)
            if sw is not None:
                m.watermark.labels("settlements").set(sw / 1e6)
            if tw is not None and sw is not None:
                lag = max(lag, (tw - sw) / 1e6)
        m.feed_gap.set(1 if gap else 0)
        m.settlement_lag.set(lag)
        self.lag_series.append((int(time.time()), lag))
        for side, name in enumerate(self.names):
            pipes = [(p, part.pipeline) for p, part in self.inputs.items()]
            m.buffered.labels(name).set(sum(pipe.buffered(side) for _, pipe in pipes))
            behind = 0
            for p, pipe in pipes:
                hw = self.app.consumer.highwater(TP(name, p))
                if hw is not None:
                    behind += max(0, hw - pipe.next_offset(side))
            m.consumer_lag.labels(name).set(behind)
        m.buffered.labels(self.settings.cards_topic).set(self.cards.buffered())
