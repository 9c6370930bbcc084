"""The configuration topic (``pos.config``): every worker reads all of it; ``posguard config
push`` appends a version. One partition, so the versions have one order; kept forever (a
rebuild may need a version pushed long ago: journals name the versions they switched to)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streams.config import Config, ConfigError
from streams.config_log import ConfigVersion, LiveVersion, check_version, decode_version
from streams.kafka_security import KafkaSecurity

log = logging.getLogger("posguard.worker")

TOPIC_CONFIGS: Final = {"retention.ms": "-1"}


def ensure_config_topic(
    bootstrap: str, security: KafkaSecurity, topic: str, replication: int
) -> bool:
    """Create the topic (one partition, kept forever) when it is missing; True if created."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="posguard-admin", **security.kafka_python()
    )
    try:
        if topic in admin.list_topics():
            return False
        try:
            admin.create_topics([NewTopic(topic, 1, replication, topic_configs=TOPIC_CONFIGS)])
        except TopicAlreadyExistsError:
            return False
        except KafkaError as exc:  # a broker that refuses the setting (keeps its default)
            log.warning("creating %s with retention.ms=-1 failed (%s); without it", topic, exc)
            try:
                admin.create_topics([NewTopic(topic, 1, replication)])
            except TopicAlreadyExistsError:
                return False
        return True
    finally:
        admin.close()


@dataclass
class ConfigRead:
    versions: list[LiveVersion] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    """Messages that are not usable versions, with why (never fatal)."""
    end: int = 0


def _consumer(bootstrap: str, security: KafkaSecurity) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        client_id="posguard-config",
        **security.kafka_python(),
    )


def read_versions(
    bootstrap: str,
    security: KafkaSecurity,
    topic: str,
    fixed: Config | None,
    timeout_s: float = 30,
) -> ConfigRead:
    """Every version on the topic, up to its current end."""
    consumer = _consumer(bootstrap, security)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        found = ConfigRead(end=end)
        deadline = time.monotonic() + timeout_s
        while consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise ConfigError(f"reading {topic} to its end took more than {timeout_s:.0f} s")
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    _take(record, fixed, found)
        return found
    finally:
        consumer.close()


def _take(record: Any, fixed: Config | None, found: ConfigRead) -> None:
    try:
        found.versions.append(decode_version(record.value or b"", fixed))
    except ConfigError as exc:
        found.refused.append(f"offset {record.offset}: {exc}")


class ConfigFollower(threading.Thread):
    """Reads versions pushed after ``start_at`` and hands them over through ``arrived``."""

    def __init__(
        self, bootstrap: str, security: KafkaSecurity, topic: str, fixed: Config, start_at: int
    ) -> None:
        super().__init__(name="posguard-config", daemon=True)
        self.arrived: queue.SimpleQueue[LiveVersion] = queue.SimpleQueue()
        self._args = (bootstrap, security, topic, fixed, start_at)
        self._stop_event = threading.Event()

    def run(self) -> None:
        bootstrap, security, topic, fixed, start_at = self._args
        while not self._stop_event.is_set():
            try:
                consumer = _consumer(bootstrap, security)
                tp = TopicPartition(topic, 0)
                consumer.assign([tp])
                consumer.seek(tp, start_at)
                while not self._stop_event.is_set():
                    for records in consumer.poll(timeout_ms=500).values():
                        for record in records:
                            found = ConfigRead()
                            _take(record, fixed, found)
                            for refused in found.refused:
                                log.error("configuration topic %s: %s (ignored)", topic, refused)
                            for version in found.versions:
                                self.arrived.put(version)
                            start_at = record.offset + 1
            except KafkaError as exc:  # the broker went away: read again from where it stopped
                log.warning("reading configuration topic %s failed (%s); retrying", topic, exc)
                time.sleep(2)

    def stop(self) -> None:
        self._stop_event.set()


def push_version(
    bootstrap: str,
    security: KafkaSecurity,
    topic: str,
    document: dict[str, Any],
    effective_at: str,
    by: str,
    comment: str,
    replication: int = 1,
) -> ConfigVersion:
    """Append ``document`` as the next version (numbered after the newest on the topic),
    checked first: a version a worker would refuse is never written."""
    ensure_config_topic(bootstrap, security, topic, replication)
    existing = read_versions(bootstrap, security, topic, None)
    newest = max((v.version for v in existing.versions), default=0)
    at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    message = ConfigVersion(newest + 1, effective_at, document, by, at, comment)
    check_version(message)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", **security.kafka_python())
    try:
        producer.send(
            topic, key=str(message.version).encode(), value=msgspec.json.encode(message)
        ).get(timeout=30)
    finally:
        producer.close()
    return message
