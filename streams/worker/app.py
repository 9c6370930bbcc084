"""The Faust wiring: the agents over the input topics and the card topic, the timers, the
rebalance hook and the web views, each handing over to the ``StreamWorker`` (``worker.py``)."""

from __future__ import annotations

import logging
from typing import Any, cast

import faust
from faust.types import TP

from streams.config import Config
from streams.worker.live_config import LiveConfig
from streams.worker.settings import WorkerSettings
from streams.worker.transport import LowLatencyApp, faust_credentials
from streams.worker.web import register_pages
from streams.worker.websecurity import harden
from streams.worker.worker import StreamWorker

log = logging.getLogger("posguard.worker")

# A record held for a grace (merge.py) goes at the first tick after the grace is over.
_TICK_S = 0.02
_IDLE_CHECK_S = 0.025
_PUBLISH_MARK_S = 1.0
_GAUGES_S = 2.0
_COLLECTOR_S = 1.0
_MODEL_POLL_S = 2.0


def build_app(
    settings: WorkerSettings, config: Config, live: LiveConfig | None = None
) -> tuple[faust.App, StreamWorker]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.exposed_without_token:
        log.warning(
            "POSGUARD_TOKEN is not set: serving the dashboard and API on 127.0.0.1 only "
            "(not on %s); set POSGUARD_TOKEN to expose them",
            settings.web_host,
        )
        settings = settings.with_overrides(web_host="127.0.0.1")
    app = LowLatencyApp(
        settings.group,
        broker=settings.broker_url,
        store=settings.store_url,
        datadir=str(settings.data_dir),
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_tables_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6,
        broker_rebalance_timeout=3,
        broker_heartbeat_interval=1,
        # Held (merge-buffered) input is never acknowledged before it is journaled; waiting for
        # it at a rebalance would wait for the other topic forever.
        stream_wait_empty=False,
        table_standby_replicas=0,
        producer_acks=-1,
        producer_max_request_size=settings.max_message_bytes,
        # The broker's limit is on a record batch, not a record: several small messages in one
        # batch must fit too.
        producer_max_batch_size=settings.producer_batch_bytes,
        broker_credentials=faust_credentials(settings.kafka),
        # Faust refuses to start when a table's offset kept on local disk is past its changelog's
        # end. Tansu (the embedded broker) reports offsets past the end it gives for batches of
        # several records (a batch of 7 then one of 3: offsets 0 to 9, end offset 8), so a restart
        # on the same disk failed once several case writes had shared a batch. The worker's tables
        # tolerate local state ahead of the changelog: journal batches past the published mark are
        # sent again (journal.py), a local snapshot or case the changelog lacks is only extra.
        recovery_consistency_check=False,
    )
    # Faust's own Prometheus sensor is not attached: it runs on every message and cost a tenth of
    # the worker's time (py-spy); posguard's metrics cover throughput, lag and latency.
    worker = StreamWorker(app, settings, config, live)
    harden(cast(Any, app.web).web_app)

    @app.agent(worker.input_topic, concurrency=1)
    async def detect(stream: Any) -> None:
        async for event in stream.noack().events():
            worker.on_message(event)

    @app.agent(worker.cards_topic, concurrency=1)
    async def card_velocity(stream: Any) -> None:
        async for event in stream.noack().events():
            worker.on_card_batch(event)

    @app.timer(_TICK_S)
    async def tick() -> None:
        worker.tick()

    @app.timer(_IDLE_CHECK_S)
    async def idle_flush() -> None:
        await worker.flush_when_idle()

    @app.timer(_PUBLISH_MARK_S)
    async def published() -> None:
        await worker.mark_published()

    @app.timer(_GAUGES_S)
    async def gauges() -> None:
        worker.refresh_gauges()

    @app.timer(_COLLECTOR_S)
    async def collector() -> None:
        worker.collector.tick(worker.idle_seconds())

    @app.timer(_TICK_S)
    async def live_config() -> None:
        worker.live.learn(worker)

    @app.timer(_MODEL_POLL_S)
    async def model_reload() -> None:
        await worker.reload_model()

    async def on_revoked(sender: Any, revoked: set[TP], **_: Any) -> None:
        worker.on_revoked(revoked)

    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]

    register_pages(app, worker)
    return app, worker
