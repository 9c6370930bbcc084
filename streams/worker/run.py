"""``posguard worker``: create missing topics, then run the Faust worker until stopped."""

from __future__ import annotations

import logging
import sys

from streams.config import Config
from streams.kafka_probe import BrokerSecurityError, BrokerUnavailableError
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
    app, worker = build_app(settings, config)
    sys.stderr.write(
        f"posguard worker: consuming {settings.broker_url} ({settings.kafka.describe()}); "
        f"API and metrics on http://{settings.web_host}:{settings.web_port}/; messages of at "
        f"most {layout.max_message_bytes:,} bytes ({layout.limit_source})\n"
    )
    logging.getLogger("posguard").setLevel(logging.INFO)
    worker.collector.start()
    Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False).execute_from_commandline()
    return 0
