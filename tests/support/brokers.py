"""Real brokers for integration tests and the benchmark: Tansu (embedded) and Apache Kafka.

Apache Kafka runs from the Maven Central jars that ``deploy/kafka/fetch.sh`` caches (``make test``
fetches them). Where a broker cannot start, tests skip with the reason, except under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.embedded_broker import EmbeddedBroker, free_port, stop_process, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


def kafka_libs() -> Path | None:
    """The cached Apache Kafka jars, or None when they were never fetched."""
    env = os.environ.get("POSGUARD_KAFKA_LIBS")
    if env:
        return Path(env) if Path(env).is_dir() else None
    try:
        out = subprocess.run(
            [str(ROOT / "deploy/kafka/fetch.sh")],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    path = Path(out.stdout.strip())
    return path if path.is_dir() else None


class ApacheKafka:
    """A single-node KRaft broker (combined broker and controller) in a temporary directory."""

    def __init__(self, libs: Path) -> None:
        self.libs = libs
        self.port = free_port()
        self.controller_port = free_port()
        self.url = f"kafka://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="posguard-kafka-"))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ApacheKafka:
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("java is not installed")
        props = self.dir / "server.properties"
        props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={self.dir / 'data'}",
                    "num.partitions=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                ]
            )
            + "\n"
        )
        cp = f"{self.libs}/*"
        cluster = uuid.uuid4().hex[:22]
        subprocess.run(
            [java, "-cp", cp, "kafka.tools.StorageTool", "format", "--standalone",
             "-t", cluster, "-c", str(props)],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        log = (self.dir / "kafka.log").open("wb")
        self._process = subprocess.Popen(
            [java, "-Xms256m", "-Xmx768m", "-cp", cp, "kafka.Kafka", str(props)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, 60, self._process)
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_process(process, 15)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def tansu() -> Iterator[str]:
    with EmbeddedBroker() as broker:
        yield broker.url


@contextmanager
def apache_kafka() -> Iterator[str]:
    libs = kafka_libs()
    if libs is None:
        raise RuntimeError("the Apache Kafka jars are not available (run deploy/kafka/fetch.sh)")
    broker = ApacheKafka(libs).start()
    try:
        yield broker.url
    finally:
        broker.stop()
