"""The worker's settings: one frozen object read from the environment (and command-line flags).

Every error names the variable to fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from streams.config import ConfigError
from streams.kafka_security import KafkaSecurity, security_from

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
KAFKA_DEFAULT_MESSAGE_MAX_BYTES = 1_048_588
"""Kafka's default ``message.max.bytes`` (and so topics' ``max.message.bytes``)."""
_RECORD_OVERHEAD = 4096
"""What a message's value leaves of the limit for its key, headers and the record batch around
it (a record batch header is 61 bytes; keys here are ids)."""


@dataclass(frozen=True, slots=True)
class Topics:
    transactions: str = "pos.transactions"
    settlements: str = "pos.settlements"
    feedback: str = "pos.feedback"
    payouts: str = "pos.payouts"
    alerts: str = "pos.alerts"
    deadletter: str = "pos.deadletter"
    config: str = "pos.config"
    """Live configuration versions (``streams/config_topic.py``)."""


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    broker_url: str = "kafka://localhost:9092"
    web_port: int = 6066
    web_host: str = "127.0.0.1"
    data_dir: Path = Path(".posguard")
    group: str = "posguard"
    partitions: int = 1
    replication: int = 1
    config_file: Path | None = None
    token: str | None = None
    """Required by the dashboard and API when set (``POSGUARD_TOKEN``); without it the worker
    binds to localhost only."""
    model_file: Path | None = None
    """Isolation-forest model (``posguard train``); reloaded when the file changes."""
    topics: Topics = Topics()
    kafka: KafkaSecurity = KafkaSecurity()
    """How the worker authenticates to the broker (TLS, SASL); see ``streams.kafka_security``."""
    merge_grace_ms: int = 30
    """How long a record is held before it may overtake the other, quiet topic (see merge.py)."""
    merge_active_grace_ms: int = 80
    """The same while the other topic received something within this time (a batch arriving),
    unless the broker, asked after the record arrived, says that topic has nothing unread."""
    idle_flush_ms: int = 100
    """Both inputs idle this long, and the broker holding nothing unread, closes the engine's
    open step (so the last alerts of a burst are not held until the next event). Like the
    active grace, it assumes a settlement batch arrives without pauses this long."""
    max_message_bytes: int = KAFKA_DEFAULT_MESSAGE_MAX_BYTES
    """The largest message the broker takes on every topic the worker writes (read from the
    broker at start, see ``topics.py``)."""
    snapshot_every_entries: int = 1_000_000
    """A partition's state is snapshotted after this many journal entries (``snapshots.py``),"""
    snapshot_every_s: float = 300.0
    """or this many seconds after the last snapshot, once anything was journaled since."""
    store: str = "rocksdb"
    """Where tables live between restarts: ``rocksdb`` (local RocksDB files under ``data_dir``;
    a restart reads only the changelog written since) or ``memory`` (the whole changelog is read
    again at every start)."""

    @property
    def store_url(self) -> str:
        return f"{self.store}://"

    @property
    def cards_topic(self) -> str:
        """The internal topic of approved sales keyed by card (one per consumer group)."""
        return f"{self.group}-cards"

    @property
    def bootstrap(self) -> str:
        """``host:port[,host:port]`` without the ``kafka://`` scheme, for plain Kafka clients."""
        return bootstrap_servers(self.broker_url)

    @property
    def value_budget(self) -> int:
        """The largest value the worker puts in one message."""
        return max(self.max_message_bytes - _RECORD_OVERHEAD, 1024)

    @property
    def producer_batch_bytes(self) -> int:
        """The producer's record batch size: Faust's default, 16 KiB, unless the limit is
        smaller (it bounds a batch, headers included)."""
        return max(1024, min(16_384, self.max_message_bytes - 512))

    @property
    def exposed_without_token(self) -> bool:
        return self.token is None and self.web_host not in LOOPBACK_HOSTS

    def with_overrides(self, **changes: Any) -> WorkerSettings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def bootstrap_servers(url: str) -> str:
    return ",".join(part.removeprefix("kafka://") for part in url.split(";"))


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    text = env.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r}: expected an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={text!r}: must be at least {minimum}")
    return value


_STORES = ("rocksdb", "memory")


def _store(name: str) -> str:
    if name not in _STORES:
        raise ConfigError(f"POSGUARD_STORE={name!r}: expected one of {', '.join(_STORES)}")
    return name


def settings_from_env(
    env: Mapping[str, str] | None = None, kafka: KafkaSecurity | None = None
) -> WorkerSettings:
    """The settings from the environment; ``kafka`` given (flags over the environment, already
    checked together) replaces reading the security settings from the environment alone."""
    env = os.environ if env is None else env
    d = WorkerSettings()
    config = env.get("POSGUARD_CONFIG")
    return WorkerSettings(
        broker_url=env.get("POSGUARD_BROKER_URL") or d.broker_url,
        web_port=_int(env, "POSGUARD_WEB_PORT", d.web_port, 0),
        web_host=env.get("POSGUARD_WEB_HOST") or d.web_host,
        data_dir=Path(env.get("POSGUARD_DATA_DIR") or d.data_dir),
        model_file=Path(env["POSGUARD_MODEL"]) if env.get("POSGUARD_MODEL") else None,
        token=env.get("POSGUARD_TOKEN") or None,
        group=env.get("POSGUARD_GROUP") or d.group,
        partitions=_int(env, "POSGUARD_PARTITIONS", d.partitions, 1),
        replication=_int(env, "POSGUARD_REPLICATION", d.replication, 1),
        config_file=Path(config) if config else None,
        merge_grace_ms=_int(env, "POSGUARD_MERGE_GRACE_MS", d.merge_grace_ms, 0),
        merge_active_grace_ms=_int(
            env, "POSGUARD_MERGE_ACTIVE_GRACE_MS", d.merge_active_grace_ms, 0
        ),
        idle_flush_ms=_int(env, "POSGUARD_IDLE_FLUSH_MS", d.idle_flush_ms, 10),
        snapshot_every_entries=_int(
            env, "POSGUARD_SNAPSHOT_EVERY_ENTRIES", d.snapshot_every_entries, 1
        ),
        snapshot_every_s=_int(env, "POSGUARD_SNAPSHOT_EVERY_SECONDS", int(d.snapshot_every_s), 1),
        store=_store(env.get("POSGUARD_STORE") or d.store),
        kafka=security_from(env) if kafka is None else kafka,
        topics=Topics(
            transactions=env.get("POSGUARD_TOPIC_TRANSACTIONS") or d.topics.transactions,
            settlements=env.get("POSGUARD_TOPIC_SETTLEMENTS") or d.topics.settlements,
            feedback=env.get("POSGUARD_TOPIC_FEEDBACK") or d.topics.feedback,
            payouts=env.get("POSGUARD_TOPIC_PAYOUTS") or d.topics.payouts,
            alerts=env.get("POSGUARD_TOPIC_ALERTS") or d.topics.alerts,
            deadletter=env.get("POSGUARD_TOPIC_DEADLETTER") or d.topics.deadletter,
            config=env.get("POSGUARD_TOPIC_CONFIG") or d.topics.config,
        ),
    )
