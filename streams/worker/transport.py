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
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine, Generator
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka

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
                        if r_offset is None or offset >= r_offset:
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


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class LowLatencyApp(faust.App):
    """``faust.App`` whose consumer waits at most ``FETCH_MAX_WAIT_MS`` per fetch and hands
    messages over without per-message tasks."""

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)
