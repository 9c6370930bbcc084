"""Faust's Kafka transport with a short fetch wait, for produce-to-alert latency.

Faust creates its worker consumer with ``fetch_max_wait_ms=1500``, hard-coded. aiokafka keeps one
fetch in flight per broker and leaves partitions with buffered records out of it, so a fetch
often asks only for the quiet topic (settlements between batches); the broker then holds it up to
1.5 s while transactions pile up unfetched. Measured on Tansu at half load: every message waited
0.4-1.6 s before the worker saw it. A 25 ms wait bounds that (100 ms still left transaction
alerts 70-100 ms behind at half load); brokers still answer at once when data is there, so
throughput is unchanged.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 25


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this when it starts its fetcher; there is no setting for it in Faust.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class LowLatencyApp(faust.App):
    """``faust.App`` whose consumer waits at most ``FETCH_MAX_WAIT_MS`` per fetch."""

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)
