"""Faust's Kafka transport with a short fetch wait and a cheaper hand-over of each message.

**Fetch wait.** Faust creates its worker consumer with ``fetch_max_wait_ms=1500``, hard-coded.
aiokafka keeps one fetch in flight per broker and leaves partitions with buffered records out of
it, so a fetch often asks only for the quiet topic (settlements between batches); the broker then
holds it up to 1.5 s while transactions pile up unfetched. Measured on Tansu at half load: every
message waited 0.4-1.6 s before the worker saw it. A 25 ms wait bounds that (100 ms still left
transaction alerts 70-100 ms behind at half load); brokers still answer at once when data is
there, so throughput is unchanged.

**Hand-over.** Faust's consumer loop spends four asyncio tasks and an ``asyncio.wait`` on every
message; ``_Consumer._drain_messages`` runs the callback in place and keeps Faust's way only for
a callback that has to wait (see there). Measured on Tansu with ``tests.bench.bench_stream``'s
posguard run, alternating the two versions: 2,950-3,360 events/s before, 3,890-4,910 after.

**Rewind.** ``rewind`` seeks a partition back (the offset guard, ``contiguity.py``). Faust's
``seek_wait`` sets its read offset back, but the rest of the batch fetched before the seek is
still handed over, and a fetch under way when the seek was asked for can return records from
before it too; each moves the read offset forward again, and Faust drops every message below it:
exactly the ones the seek was for (seen on Tansu after a ``kill -9``: the worker stalled on
settlements until it was stopped). Which records a fetch returned from before the seek cannot be
told here, so a partition rewound once is handed over as it comes, below the read offset too;
the offset guard drops what came from before the seek, and the journal what it holds already.

**Commits.** Faust commits past one unacknowledged message at the head of the acknowledged run
(faust-streaming/faust#606; fix proposed in #707): with 10 handed over and not yet acknowledged
and 11, 12 acknowledged, it commits 13, and a restart never sees 10 again. The worker acknowledges
out of order (a card batch whose sales wait, then a clock-only batch at once), so a ``kill -9``
at that moment would lose the waiting batch for good. ``_new_offset`` here withholds
the commit while an offset handed over and not acknowledged lies below the lowest acknowledged
one (a gap in the log is no such offset: nothing was handed over there).
"""

from __future__ import annotations

import asyncio
import types
from collections import deque
from collections.abc import Coroutine, Generator
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.kafka_security import KafkaSecurity

FETCH_MAX_WAIT_MS = 25


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this when it starts its fetcher; there is no setting for it in Faust.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], waiting_on: Any) -> Generator[Any, Any, Any]:
    """Go on with ``coro``, suspended after it yielded ``waiting_on`` (an asyncio future): the
    driving task waits for that future first, then resumes ``coro`` as asyncio would have (a
    value sent or an exception thrown, cancellation included, is passed on)."""
    to_yield = waiting_on
    while True:
        try:
            sent = yield to_yield
        except BaseException as exc:  # every throw (cancellation too) goes to the coroutine
            try:
                to_yield = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                to_yield = coro.send(sent)
            except StopIteration as stop:
                return stop.value


async def _rest_of(coro: Coroutine[Any, Any, Any], waiting_on: Any) -> Any:
    return await _resume(coro, waiting_on)


class _Consumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rewound: set[TP] = set()
        """Assigned topic-partitions ``rewind`` was asked for (read below the read offset)."""
        self._handed: dict[TP, deque[int]] = {}
        """Per assigned topic-partition, offsets handed over in order, the acknowledged ones
        dropped from the front when offsets are committed."""
        self._pause_pending: set[TP] = set()
        """Pauses asked for while a fetched batch is being handed over (see ``pause_soon``)."""

    def pause_soon(self, tps: set[TP]) -> None:
        """Pause ``tps`` once the batch being handed over is done. Faust's ``getmany`` skips
        the rest of a batch's records of a partition paused meanwhile, and they would have to be
        read again (a hole the offset guard rewinds to)."""
        self._pause_pending |= tps

    def resume_partitions(self, tps: Any) -> None:
        self._pause_pending.difference_update(tps)
        super().resume_partitions(tps)

    def on_buffer_drop(self, tp: TP) -> None:
        # Faust makes a partition active again when its stream buffer drains, whoever paused
        # it; one the worker paused (merge backpressure, ``flow.py``) stays paused.
        if tp in self._paused_partitions:
            self._buffered_partitions.discard(tp)
            return
        super().on_buffer_drop(tp)

    def _new_offset(self, tp: TP) -> int | None:
        handed = self._handed.get(tp)
        acked_index = self._acked_index[tp]
        if handed:
            committed = self._committed_offset[tp]
            while handed and (
                handed[0] in acked_index or (committed is not None and handed[0] < committed)
            ):
                handed.popleft()
            acked = self._acked[tp]
            if handed and acked and handed[0] < min(acked):
                return None  # handed over and not acknowledged: committing past it loses it
        offset: int | None = super()._new_offset(tp)
        return offset

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        await super().on_partitions_revoked(revoked)
        for tp in revoked:
            self._handed.pop(tp, None)
            self._rewound.discard(tp)

    async def rewind(self, tp: TP, offset: int) -> None:
        """Seek ``tp`` back to ``offset``, and from now on hand over what it reads even below
        Faust's read offset."""
        self._rewound.add(tp)
        await self.seek_wait({tp: offset})

    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - needs a broker
        """Faust's loop handing fetched messages to the streams, with a fast path.

        Faust hands each message over with ``wait_first(callback(message),
        suspend_flow.wait())``: four tasks and an ``asyncio.wait`` per message, a sixth of the
        worker's CPU at full load. Here the callback (a lock and a queue put, which finish at once
        unless the stream's buffer is full or flow is suspended) is first run in place; only if it
        has to wait does the rest of it go through ``wait_first`` as in Faust, so a rebalance
        still abandons a message it was blocked on. Otherwise this is Faust 0.15.3's loop
        (``faust/transport/consumer.py``, BSD licence): read offsets, gaps, commits.
        """
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        yield_every = 100
        since_yield = 0
        rewound = self._rewound
        handed = self._handed
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        since_yield += 1
                        if since_yield > yield_every:
                            await asyncio.sleep(0)
                            since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        # Faust drops what lies below its read offset; not of a rewound partition.
                        if r_offset is None or offset >= r_offset or tp in rewound:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            coro = cast(Coroutine[Any, Any, Any], callback(message))
                            try:
                                waiting_on = coro.send(None)
                            except StopIteration:
                                pass
                            else:
                                await self.wait_first(
                                    _rest_of(coro, waiting_on), self.suspend_flow.wait()
                                )
                            set_read_offset(tp, offset)
                            if acks_enabled_for(message.topic):
                                queue = handed.get(tp)
                                if queue is None:
                                    queue = handed[tp] = deque()
                                queue.append(offset)
                    if self._pause_pending:
                        self.pause_partitions(self._pause_pending)
                        self._pause_pending = set()
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


def committed_offset(app: faust.App, tp: TP) -> int | None:
    """The offset the group committed for ``tp`` (the next one to read) as ``app``'s consumer
    knows it since the partition was assigned; None when nothing is committed or known yet."""
    value: int | None = cast(Any, app.consumer)._committed_offset.get(tp)
    return value


async def rewind(app: faust.App, tp: TP, offset: int) -> None:
    """Seek ``tp`` of ``app``'s consumer back to ``offset`` (see ``_Consumer.rewind``)."""
    consumer = app.consumer
    if isinstance(consumer, _Consumer):
        await consumer.rewind(tp, offset)
    else:  # another transport: Faust's own loop, nothing of ours to lift
        await consumer.seek_wait({tp: offset})


def faust_credentials(security: KafkaSecurity) -> Any:
    """Faust's form of the settings (its aiokafka driver passes them to every client)."""
    context = security.ssl_context()
    if security.uses_sasl:
        return faust.SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password,
            ssl_context=context,
            mechanism=security.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class LowLatencyApp(faust.App):
    """``faust.App`` whose consumer waits at most ``FETCH_MAX_WAIT_MS`` per fetch and hands
    messages over without per-message tasks."""

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


def raw_topic(app: faust.App, partitions: int, *names: str) -> Any:
    """Topics whose keys and values are bytes as they are (decoded by posguard itself)."""
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


def bytes_table(app: faust.App, partitions: int, name: str, help: str) -> Any:
    """A changelog-backed table of bytes, one partition per input partition."""
    return app.Table(name, key_type=bytes, value_type=bytes, partitions=partitions, help=help)
