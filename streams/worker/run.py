"""``posguard worker``: create missing topics, then run the Faust worker until stopped."""

from __future__ import annotations

import logging
import sys

from kafka.errors import KafkaError

from streams.config import Config, ConfigError
from streams.config_topic import ConfigFollower, ensure_config_topic, read_versions
from streams.kafka_probe import BrokerSecurityError, BrokerUnavailableError
from streams.worker.live_config import LiveConfig
from streams.worker.settings import WorkerSettings
from streams.worker.topics import TopicLayoutError, ensure_topics

EXIT_BROKER = 1
EXIT_TOPICS = 2


def run_worker(settings: WorkerSettings, config: Config, loglevel: str = "warning") -> int:
    # Imported here: Faust takes a second to import and the other commands do not need it.
    from faust.worker import Worker

    from streams.worker.app import build_app

    try:
        layout = ensure_topics(settings)
    except TopicLayoutError as exc:
        sys.stderr.write(f"posguard worker: {exc}\n")
        return EXIT_TOPICS
    except (BrokerSecurityError, BrokerUnavailableError) as exc:
        sys.stderr.write(f"posguard worker: {exc}\n")
        return EXIT_BROKER
    if layout.created:
        sys.stderr.write(f"posguard worker: created topics {', '.join(layout.created)}\n")
    settings = settings.with_overrides(
        partitions=layout.partitions, max_message_bytes=layout.max_message_bytes
    )
    try:
        live, follower = _live_config(settings, config)
    except (ConfigError, KafkaError) as exc:
        sys.stderr.write(f"posguard worker: configuration topic {settings.topics.config}: {exc}\n")
        return EXIT_BROKER
    app, worker = build_app(settings, config, live)
    sys.stderr.write(
        f"posguard worker: consuming {settings.broker_url} ({settings.kafka.describe()}); "
        f"API and metrics on http://{settings.web_host}:{settings.web_port}/; messages of at "
        f"most {layout.max_message_bytes:,} bytes ({layout.limit_source})\n"
    )
    logging.getLogger("posguard").setLevel(logging.INFO)
    worker.collector.start()
    follower.start()
    Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False).execute_from_commandline()
    return 0


def _live_config(settings: WorkerSettings, config: Config) -> tuple[LiveConfig, ConfigFollower]:
    """Every version on the configuration topic (read before any partition is built: a
    journal may name one), and a reader for those pushed later."""
    topic = settings.topics.config
    if ensure_config_topic(settings.bootstrap, settings.kafka, topic, settings.replication):
        sys.stderr.write(f"posguard worker: created topic {topic}\n")
    read = read_versions(settings.bootstrap, settings.kafka, topic, config)
    for refused in read.refused:
        sys.stderr.write(f"posguard worker: {topic} {refused} (ignored)\n")
    live = LiveConfig(read.versions)
    follower = ConfigFollower(settings.bootstrap, settings.kafka, topic, config, read.end)
    live.arrived = follower.arrived
    if read.versions:
        newest = max(v.version for v in read.versions)
        sys.stderr.write(f"posguard worker: configuration versions up to {newest} known\n")
    return live, follower
