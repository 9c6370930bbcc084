"""Creating the topics when they are missing, with partition counts read from the broker
(kafka-python's admin client)."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from kafka.admin import ConfigResource, KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streams.kafka_probe import BrokerUnavailableError, probe_broker
from streams.kafka_security import KafkaSecurity
from streams.worker.settings import KAFKA_DEFAULT_MESSAGE_MAX_BYTES, WorkerSettings

log = logging.getLogger("posguard.worker")


class TopicLayoutError(Exception):
    """Existing topics the worker cannot run on; the message says how to fix them."""


@dataclass(frozen=True, slots=True)
class TopicLayout:
    partitions: int
    """Of every co-partitioned topic: the input topics' own count when they exist."""
    created: list[str]
    max_message_bytes: int = KAFKA_DEFAULT_MESSAGE_MAX_BYTES
    """The smallest message size limit of the broker and of the topics the worker writes."""
    limit_source: str = "Kafka's default"


def ensure_topics(settings: WorkerSettings, wait_s: float = 30.0) -> TopicLayout:
    """Create the topics that do not exist yet, and check those that do.

    The input topics must be co-partitioned (the worker's join and journal rely on partition n
    meaning the same merchants in each): when they exist, their partition count is the one every
    other topic gets, and ``settings.partitions`` only applies to inputs created here. The
    internal topics (the card repartition, the tables' changelogs) must have that count too,
    since Faust gives partition n of every topic to one worker.
    """
    admin = _connect(settings.bootstrap, settings.kafka, wait_s)
    try:
        t = settings.topics
        inputs = [t.transactions, t.settlements, t.feedback, t.payouts]
        counts = _partition_counts(admin)
        found = {name: counts[name] for name in inputs if name in counts}
        if len(set(found.values())) > 1:
            described = " and ".join(f"{name} has {n}" for name, n in found.items())
            raise TopicLayoutError(
                f"the input topics must have the same number of partitions (they are keyed by "
                f"merchant and joined per partition), but {described}; add partitions to the "
                "smaller one (kafka-topics.sh --alter --partitions N) before starting posguard"
            )
        partitions = next(iter(found.values()), settings.partitions)
        internal = [settings.cards_topic] + [
            name
            for name in counts
            if name.startswith(f"{settings.group}-") and name.endswith("-changelog")
        ]
        for name in internal:
            if name in counts and counts[name] != partitions:
                raise TopicLayoutError(
                    f"posguard's internal topic {name} has {counts[name]} partitions but the "
                    f"input topics have {partitions}; stop every worker of group "
                    f"{settings.group}, delete it (kafka-topics.sh --delete --topic {name}) and "
                    "start again: posguard rebuilds it from the input topics"
                )
        wanted = [*inputs, t.alerts, t.deadletter, settings.cards_topic]
        missing = [
            NewTopic(name, partitions, settings.replication)
            for name in wanted
            if name not in counts
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
                admin.create_topics(missing)
        written = [t.alerts, t.deadletter, *internal]
        limit, source = _message_limit(admin, written)
        return TopicLayout(partitions, [topic.name for topic in missing], limit, source)
    finally:
        admin.close()


def _message_limit(admin: KafkaAdminClient, topics: list[str]) -> tuple[int, str]:
    """The smallest of the brokers' ``message.max.bytes`` and the topics'
    ``max.message.bytes``, and where it comes from. A broker that does not answer
    DescribeConfigs (Tansu) leaves Kafka's default."""
    found: list[tuple[int, str]] = []
    try:
        brokers = [str(b["broker_id"]) for b in admin.describe_cluster()["brokers"]]
        resources = [ConfigResource("BROKER", b, ["message.max.bytes"]) for b in brokers]
        resources += [ConfigResource("TOPIC", name, ["max.message.bytes"]) for name in topics]
        described = admin.describe_configs(resources, config_filter="all")
    except (KafkaError, KeyError, TypeError) as exc:
        log.warning("the broker did not say its message size limits (%s); assuming Kafka's", exc)
        return KAFKA_DEFAULT_MESSAGE_MAX_BYTES, "Kafka's default"
    for kind, key in (("broker", "message.max.bytes"), ("topic", "max.message.bytes")):
        for name, configs in (described.get(kind) or {}).items():
            value = (configs.get(key) or {}).get("value")
            if value is not None and str(value).isdigit():
                found.append((int(value), f"{key} of {kind} {name}"))
    return min(found, default=(KAFKA_DEFAULT_MESSAGE_MAX_BYTES, "Kafka's default"))


def _partition_counts(admin: KafkaAdminClient) -> dict[str, int]:
    described: list[dict[str, Any]] = admin.describe_topics()
    counts: dict[str, int] = {}
    for topic in described:
        name = topic.get("name") or topic.get("topic")
        if name and not topic.get("error_code"):
            counts[str(name)] = len(topic.get("partitions") or [])
    return counts


def _connect(bootstrap: str, security: KafkaSecurity, wait_s: float) -> KafkaAdminClient:
    """The admin client, once the probe found a broker that accepts this client's security
    (it raises at once when the broker answers but refuses it)."""
    deadline = time.monotonic() + wait_s
    probe_broker(bootstrap, security, wait_s)
    while True:
        try:
            return KafkaAdminClient(
                bootstrap_servers=bootstrap, client_id="posguard-admin", **security.kafka_python()
            )
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise BrokerUnavailableError(
                    f"no Kafka broker answers at {bootstrap} (POSGUARD_BROKER_URL): {exc}"
                ) from None
            time.sleep(0.5)
