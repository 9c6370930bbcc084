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
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from streams.embedded_broker import EmbeddedBroker, free_port, stop_process, wait_for_port
from tests.support.tls import STORE_PASSWORD, TlsMaterial

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


SCRAM_USER = "posguard"
SCRAM_PASSWORD = "scram-Secret-7f3a"
PLAIN_USER = "plainuser"
PLAIN_PASSWORD = "plain-Secret-91c2"


@dataclass(frozen=True, slots=True)
class SecuredListeners:
    """The secured broker's extra listeners, all on 127.0.0.1."""

    sasl_ssl: int
    """SASL over TLS: SCRAM-SHA-512 and SCRAM-SHA-256 (user ``SCRAM_USER``) and PLAIN
    (``PLAIN_USER``)."""
    mtls: int
    """TLS that requires a client certificate signed by the test CA."""


class ApacheKafka:
    """A single-node KRaft broker (combined broker and controller) in a temporary directory.

    With ``tls`` it also listens with SASL_SSL and with mutual TLS (see ``SecuredListeners``);
    its PLAINTEXT listener stays for the tests' own admin and readers.
    """

    def __init__(self, libs: Path, tls: TlsMaterial | None = None) -> None:
        self.libs = libs
        self.port = free_port()
        self.controller_port = free_port()
        self.url = f"kafka://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="posguard-kafka-"))
        self.tls = tls
        self.secured = SecuredListeners(free_port(), free_port()) if tls else None
        self._process: subprocess.Popen[bytes] | None = None

    def _listener_lines(self) -> list[str]:
        plain = f"PLAINTEXT://127.0.0.1:{self.port}"
        controller = f"CONTROLLER://127.0.0.1:{self.controller_port}"
        if self.tls is None or self.secured is None:
            return [
                f"listeners={plain},{controller}",
                f"advertised.listeners={plain}",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            ]
        secured = (
            f"SASL_SSL://127.0.0.1:{self.secured.sasl_ssl},MTLS://127.0.0.1:{self.secured.mtls}"
        )
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        plain_login = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_{PLAIN_USER}="{PLAIN_PASSWORD}";'
        )
        return [
            f"listeners={plain},{controller},{secured}",
            f"advertised.listeners={plain},{secured}",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
            "SASL_SSL:SASL_SSL,MTLS:SSL",
            "inter.broker.listener.name=PLAINTEXT",
            "sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={scram}",
            f"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={scram}",
            f"listener.name.sasl_ssl.plain.sasl.jaas.config={plain_login}",
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.location={self.tls.keystore}",
            f"ssl.keystore.password={STORE_PASSWORD}",
            "ssl.truststore.type=PKCS12",
            f"ssl.truststore.location={self.tls.truststore}",
            f"ssl.truststore.password={STORE_PASSWORD}",
            "listener.name.mtls.ssl.client.auth=required",
        ]

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
                    *self._listener_lines(),
                    "controller.listener.names=CONTROLLER",
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
        users = [
            arg
            for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256")
            for arg in ("--add-scram", f"{mechanism}=[name={SCRAM_USER},password={SCRAM_PASSWORD}]")
        ]
        if not (self.dir / "data" / "meta.properties").is_file():  # not a restart
            subprocess.run(
                [java, "-cp", cp, "kafka.tools.StorageTool", "format", "--standalone",
                 "-t", cluster, "-c", str(props), *(users if self.tls else [])],
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
        log = (self.dir / "kafka.log").open("ab")
        self._process = subprocess.Popen(
            [java, "-Xms256m", "-Xmx768m", "-cp", cp, "kafka.Kafka", str(props)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, 60, self._process)
        if self.secured is not None:
            wait_for_port(self.secured.sasl_ssl, 60, self._process)
            wait_for_port(self.secured.mtls, 60, self._process)
        return self

    def stop(self, keep_data: bool = False) -> None:
        """Stop the broker (SIGTERM, a clean shutdown); ``keep_data`` keeps its data directory
        for ``start`` to run it again on the same ports."""
        process, self._process = self._process, None
        stop_process(process, 15)
        if not keep_data:
            shutil.rmtree(self.dir, ignore_errors=True)


def unavailable(what: str, exc: Exception) -> NoReturn:
    """A broker that cannot start: a failure under ``CI=true``, a skip with the reason locally."""
    if os.environ.get("CI") == "true":
        raise exc
    pytest.skip(f"{what} unavailable here: {exc}")


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
