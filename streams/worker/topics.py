"""Creating the topics when they are missing (kafka-python's admin client)."""

from __future__ import annotations

import contextlib
import time

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streams.worker.settings import WorkerSettings


class BrokerUnavailableError(Exception):
    pass


def ensure_topics(settings: WorkerSettings, wait_s: float = 30.0) -> list[str]:
    """Create the four topics, and the internal card topic, that do not exist yet; returns the
    names created.

    Input topics get ``settings.partitions`` partitions (they must be co-partitioned: the
    worker's join and journal rely on the same partition number meaning the same merchants), and
    so does the card topic (Faust gives partition n of every topic to one worker).
    """
    admin = _connect(settings.bootstrap, wait_s)
    try:
        existing = set(admin.list_topics())
        t = settings.topics
        wanted = [t.transactions, t.settlements, t.alerts, t.deadletter, settings.cards_topic]
        missing = [
            NewTopic(name, settings.partitions, settings.replication)
            for name in wanted
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
                admin.create_topics(missing)
        return [topic.name for topic in missing]
    finally:
        admin.close()


def _connect(bootstrap: str, wait_s: float) -> KafkaAdminClient:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="posguard-admin")
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise BrokerUnavailableError(
                    f"no Kafka broker answers at {bootstrap} (POSGUARD_BROKER_URL): {exc}"
                ) from None
            time.sleep(0.5)
