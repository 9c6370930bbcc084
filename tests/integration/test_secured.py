"""posguard on a secured Apache Kafka: SASL_SSL with SCRAM and PLAIN, mutual TLS.

The stream over a secured listener gives replay's alerts; a wrong password, an untrusted or
missing certificate, a host the certificate does not name, a plaintext client on a TLS port:
each is one clear line and a non-zero exit within seconds. No secret reaches a log, a message,
``/metrics`` or the API.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streams.kafka_security import KafkaSecurity, security_env
from streams.simulate.produce import produce, rows_from_file
from tests.support.brokers import (
    PLAIN_PASSWORD,
    PLAIN_USER,
    SCRAM_PASSWORD,
    SCRAM_USER,
    ApacheKafka,
)
from tests.support.stream import Expected, decode_all, final_states, wait_until
from tests.support.tls import TlsMaterial
from tests.support.worker import ROOT, WorkerProcess, read_topic, topic_env, unique_topics

pytestmark = pytest.mark.integration

_FAIL_WITHIN_S = 10.0


def _tls(broker: ApacheKafka) -> TlsMaterial:
    assert broker.tls is not None
    return broker.tls


def _scram(broker: ApacheKafka, mechanism: str = "SCRAM-SHA-512", **changes: Any) -> dict[str, Any]:
    return {
        "protocol": "SASL_SSL",
        "sasl_mechanism": mechanism,
        "sasl_username": SCRAM_USER,
        "sasl_password": SCRAM_PASSWORD,
        "ca_location": _tls(broker).ca,
        **changes,
    }


def _mtls(broker: ApacheKafka, **changes: Any) -> dict[str, Any]:
    tls = _tls(broker)
    return {
        "protocol": "SSL",
        "ca_location": tls.ca,
        "certificate_location": tls.client_cert,
        "key_location": tls.client_key_encrypted,
        "key_password": tls.client_key_password,
        **changes,
    }


def _secured_url(broker: ApacheKafka, listener: str) -> str:
    assert broker.secured is not None
    return f"kafka://127.0.0.1:{getattr(broker.secured, listener)}"


def _stream_equals_replay(
    broker: ApacheKafka,
    listener: str,
    security: KafkaSecurity,
    simulated: tuple[Path, Expected],
    tmp_path: Path,
) -> WorkerProcess:
    data, expected = simulated
    topics = unique_topics()
    state = tmp_path / "state"
    state.mkdir()
    url = _secured_url(broker, listener)
    worker = WorkerProcess(
        url,
        topics,
        state,
        f"posguard-{uuid.uuid4().hex[:8]}",
        config=data / "config.toml",
        model=data / "model.npz",
        env=security_env(security),
    ).start()
    try:
        produce(
            url.removeprefix("kafka://"),
            topics,
            rows_from_file(data / "transactions.jsonl", "event_time"),
            rows_from_file(data / "settlements.jsonl", "settled_at"),
            security=security,
            payout_rows=rows_from_file(data / "payouts.jsonl", "value_date"),
        )

        def published() -> dict[str, tuple[str, str]]:
            # Read back over the broker's PLAINTEXT listener (the test's own view).
            return final_states(decode_all(read_topic(broker.url, topics.alerts)))

        assert wait_until(lambda: published() == expected.final, 90), "stream != replay"
        assert worker.events_in() == expected.events
        _assert_no_secret_served(worker)
    finally:
        worker.stop()
    return worker


def _assert_no_secret_served(worker: WorkerProcess) -> None:
    served = [worker.metrics()]
    for path in ("/healthz", "/api/stats", "/api/alerts?limit=500", "/api/merchants", "/api/model"):
        served.append(str(worker.get(path)))
    for secret in (SCRAM_PASSWORD, PLAIN_PASSWORD, "key-secret-42"):
        assert all(secret not in text for text in served)


def _assert_no_secret_logged(log: Path | None, *secrets: str) -> None:
    assert log is not None
    text = log.read_text(errors="replace")
    for secret in secrets:
        assert secret not in text


def test_scram_sha512_over_tls_stream_equals_replay(
    secured_kafka: ApacheKafka, simulated: tuple[Path, Expected], tmp_path: Path
) -> None:
    worker = _stream_equals_replay(
        secured_kafka, "sasl_ssl", KafkaSecurity(**_scram(secured_kafka)), simulated, tmp_path
    )
    _assert_no_secret_logged(worker.log, SCRAM_PASSWORD)


def test_mtls_stream_equals_replay(
    secured_kafka: ApacheKafka, simulated: tuple[Path, Expected], tmp_path: Path
) -> None:
    worker = _stream_equals_replay(
        secured_kafka, "mtls", KafkaSecurity(**_mtls(secured_kafka)), simulated, tmp_path
    )
    assert secured_kafka.tls is not None
    _assert_no_secret_logged(worker.log, secured_kafka.tls.client_key_password)


def _posguard(
    argv: list[str], env: dict[str, str], timeout_s: float = 60
) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", *argv],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_sasl_scram_sha256_and_plain_produce_with_flags_and_password_file(
    secured_kafka: ApacheKafka,
    simulated: tuple[Path, Expected],
    tmp_path: Path,
    mechanism: str,
) -> None:
    """``posguard produce`` configured by flags, the password in a file (never a flag)."""
    data, _ = simulated
    assert secured_kafka.tls is not None
    user, password = (PLAIN_USER, PLAIN_PASSWORD) if mechanism == "PLAIN" else (
        SCRAM_USER, SCRAM_PASSWORD
    )  # fmt: skip
    password_file = tmp_path / "password"
    password_file.write_text(password + "\n")
    topics = unique_topics()
    code, output, _ = _posguard(
        [
            "produce", "--kafka", _secured_url(secured_kafka, "sasl_ssl"),
            "--transactions", str(data / "transactions.jsonl"),
            "--settlements", str(data / "settlements.jsonl"),
            "--security-protocol", "SASL_SSL", "--sasl-mechanism", mechanism,
            "--sasl-username", user, "--sasl-password-file", str(password_file),
            "--ssl-ca-location", str(secured_kafka.tls.ca),
        ],
        topic_env(topics),
    )  # fmt: skip
    assert code == 0, output
    assert password not in output
    lines = sum(1 for _ in (data / "transactions.jsonl").open("rb"))
    assert len(read_topic(secured_kafka.url, topics.transactions)) == lines


_REFUSALS: dict[str, tuple[str, Callable[[ApacheKafka], dict[str, Any]], str]] = {
    "scram-wrong-password": (
        "sasl_ssl",
        lambda b: _scram(b, sasl_password="not-the-password"),
        "refused SASL authentication for user 'posguard'",
    ),
    "scram-unknown-user": (
        "sasl_ssl",
        lambda b: _scram(b, sasl_username="nobody"),
        "refused SASL authentication for user 'nobody'",
    ),
    "tls-untrusted-certificate": (
        "sasl_ssl",
        lambda b: _scram(b, ca_location=_tls(b).other_ca),
        "certificate is not trusted",
    ),
    "tls-plaintext-client-on-tls-port": (
        "sasl_ssl",
        lambda b: {},
        "it looks like a TLS listener; set the security protocol to SSL or SASL_SSL",
    ),
    "tls-hostname-not-in-certificate": (
        "mtls@localhost",
        _mtls,
        "certificate does not name localhost",
    ),
    "mtls-no-client-certificate": (
        "mtls",
        lambda b: {"protocol": "SSL", "ca_location": _tls(b).ca},
        "requires a client certificate",
    ),
    "mtls-client-certificate-of-another-ca": (
        "mtls",
        lambda b: _mtls(
            b,
            certificate_location=_tls(b).other_ca,
            key_location=_tls(b).dir / "other-ca.key",
            key_password=None,
        ),
        "did not accept the client certificate",
    ),
    "tls-client-on-plaintext-port": (
        "plaintext",
        lambda b: {"protocol": "SSL", "ca_location": _tls(b).ca},
        "TLS handshake with",
    ),
}


@pytest.mark.parametrize("case", sorted(_REFUSALS))
def test_tls_mtls_sasl_refusals_exit_within_seconds(
    secured_kafka: ApacheKafka, tmp_path: Path, case: str
) -> None:
    listener, settings, expected = _REFUSALS[case]
    assert secured_kafka.secured is not None
    port = {
        "sasl_ssl": secured_kafka.secured.sasl_ssl,
        "mtls": secured_kafka.secured.mtls,
        "mtls@localhost": secured_kafka.secured.mtls,
        "plaintext": secured_kafka.port,
    }[listener]
    host = "localhost" if listener.endswith("@localhost") else "127.0.0.1"
    env = {
        **security_env(KafkaSecurity(**settings(secured_kafka))),
        **topic_env(unique_topics()),
        "POSGUARD_BROKER_URL": f"kafka://{host}:{port}",
        "POSGUARD_DATA_DIR": str(tmp_path / "state"),
        "POSGUARD_WEB_PORT": "0",
    }
    code, output, seconds = _posguard(["worker"], env)
    assert code == 1, output
    assert expected in output, output
    assert len(output.strip().splitlines()) == 1, output  # one line, no traceback
    assert seconds < _FAIL_WITHIN_S
    for secret in ("not-the-password", SCRAM_PASSWORD, "key-secret-42"):
        assert secret not in output
