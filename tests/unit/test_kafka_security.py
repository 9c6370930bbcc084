"""Kafka security settings: named after the Kafka client settings, checked together, and no
secret in any message, ``repr`` or ``--help``."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

from streams.cli import build_parser
from streams.config import ConfigError
from streams.kafka_probe import BrokerSecurityError, BrokerUnavailableError, probe_broker
from streams.kafka_security import KafkaSecurity, security_env, security_from
from streams.worker.settings import settings_from_env
from tests.support.tls import TlsMaterial, make_tls_material

PASSWORD = "Sup3r-secret-pw"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    if (shutil.which("openssl") is None or shutil.which("keytool") is None) and os.environ.get(
        "CI"
    ) != "true":
        pytest.skip("openssl or keytool is not installed")
    return make_tls_material(tmp_path_factory.mktemp("tls"))


def _sasl_env(**more: str) -> dict[str, str]:
    return {
        "POSGUARD_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "POSGUARD_KAFKA_SASL_MECHANISM": "scram-sha-512",
        "POSGUARD_KAFKA_SASL_USERNAME": "svc-posguard",
        "POSGUARD_KAFKA_SASL_PASSWORD": PASSWORD,
        **more,
    }


def test_default_is_plaintext_and_the_worker_reads_the_environment() -> None:
    assert security_from({}) == KafkaSecurity()
    settings = settings_from_env(_sasl_env())
    assert settings.kafka.protocol == "SASL_SSL"
    assert settings.kafka.sasl_mechanism == "SCRAM-SHA-512"
    assert settings.kafka.sasl_password == PASSWORD


def test_secrets_are_never_in_repr_or_description() -> None:
    security = security_from(_sasl_env())
    assert PASSWORD not in repr(security)
    assert PASSWORD not in repr(settings_from_env(_sasl_env()))
    assert security.describe() == "SASL_SSL, SCRAM-SHA-512 as svc-posguard"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"POSGUARD_KAFKA_SECURITY_PROTOCOL": "TLS"}, "POSGUARD_KAFKA_SECURITY_PROTOCOL"),
        (_sasl_env(POSGUARD_KAFKA_SASL_MECHANISM=""), "POSGUARD_KAFKA_SASL_MECHANISM"),
        (_sasl_env(POSGUARD_KAFKA_SASL_MECHANISM="GSSAPI"), "expected one of PLAIN"),
        (_sasl_env(POSGUARD_KAFKA_SASL_USERNAME=""), "POSGUARD_KAFKA_SASL_USERNAME"),
        (_sasl_env(POSGUARD_KAFKA_SASL_PASSWORD=""), "POSGUARD_KAFKA_SASL_PASSWORD"),
        ({"POSGUARD_KAFKA_SASL_PASSWORD": PASSWORD}, "SASL settings are given"),
        ({"POSGUARD_KAFKA_SSL_CA_LOCATION": "/no/such/ca.pem"}, "cannot read /no/such/ca.pem"),
        (
            {"POSGUARD_KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM": "maybe"},
            "expected https or none",
        ),
    ],
)
def test_each_error_names_the_setting_and_never_the_secret(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        security_from(env)
    assert message in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_tls_files_need_a_tls_protocol_and_a_certificate_needs_its_key(tmp_path: Path) -> None:
    pem = tmp_path / "x.pem"
    pem.write_text("x")
    with pytest.raises(ConfigError, match=r"set .* to SSL"):
        security_from({"POSGUARD_KAFKA_SSL_CA_LOCATION": str(pem)})
    with pytest.raises(ConfigError, match="needs both"):
        security_from(
            {
                "POSGUARD_KAFKA_SECURITY_PROTOCOL": "SSL",
                "POSGUARD_KAFKA_SSL_CERTIFICATE_LOCATION": str(pem),
            }
        )


def test_password_file_first_line_and_flags_override_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\nignored\n")
    parser = build_parser()
    args = parser.parse_args(
        ["worker", "--sasl-username", "from-flag", "--sasl-password-file", str(secret)]
    )
    security = security_from(_sasl_env(POSGUARD_KAFKA_SASL_PASSWORD="other"), args)
    assert security.sasl_username == "from-flag"
    assert security.sasl_password == PASSWORD
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        security_from(_sasl_env(POSGUARD_KAFKA_SASL_PASSWORD_FILE=str(empty)))


@pytest.mark.parametrize("command", ["worker", "simulate", "produce", "demo"])
def test_help_offers_every_setting_but_no_password_flag(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSGUARD_KAFKA_SASL_PASSWORD", PASSWORD)
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub = subparsers.choices[command]
    text = sub.format_help()
    for flag in (
        "--security-protocol",
        "--sasl-mechanism",
        "--sasl-username",
        "--sasl-password-file",
        "--ssl-ca-location",
        "--ssl-certificate-location",
        "--ssl-key-location",
        "--ssl-key-password-file",
        "--ssl-endpoint-identification-algorithm",
    ):
        assert flag in text
    assert "--sasl-password " not in text and "--ssl-key-password " not in text
    assert PASSWORD not in text


def test_security_env_gives_a_child_the_same_settings_and_masks_the_parents() -> None:
    security = security_from(_sasl_env())
    env = security_env(security)
    assert security_from(env) == security
    parent = {"POSGUARD_KAFKA_SSL_CA_LOCATION": "/etc/elsewhere.pem"}
    assert security_from({**parent, **security_env(KafkaSecurity())}) == KafkaSecurity()


def test_encrypted_client_key_loads_with_its_password_only(tls: TlsMaterial) -> None:
    good = KafkaSecurity(
        protocol="SSL",
        ca_location=tls.ca,
        certificate_location=tls.client_cert,
        key_location=tls.client_key_encrypted,
        key_password=tls.client_key_password,
    )
    assert good.ssl_context() is not None
    bad = KafkaSecurity(
        protocol="SSL",
        ca_location=tls.ca,
        certificate_location=tls.client_cert,
        key_location=tls.client_key_encrypted,
        key_password="wrong-" + PASSWORD,
    )
    with pytest.raises(ConfigError, match="cannot load the client certificate") as raised:
        bad.ssl_context()
    assert PASSWORD not in str(raised.value)
    assert tls.client_key_password not in str(raised.value)


def test_probe_waits_for_a_broker_that_is_not_up_then_gives_up() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BrokerUnavailableError, match="no Kafka broker answers"):
        probe_broker(f"127.0.0.1:{port}", KafkaSecurity(), wait_s=0.3)


def test_probe_says_tls_when_a_listener_hangs_up_on_a_plaintext_request() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def hang_up() -> None:
        conn, _ = server.accept()
        conn.recv(64)
        conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        with pytest.raises(BrokerSecurityError, match="looks like a TLS listener"):
            probe_broker(f"127.0.0.1:{port}", KafkaSecurity(), wait_s=0)
    finally:
        thread.join(5)
        server.close()


def test_flags_complete_what_the_environment_starts() -> None:
    """The password in the environment, the rest as flags: checked together, not the
    environment alone (which would say SASL settings without a SASL protocol)."""
    env = {"POSGUARD_KAFKA_SASL_PASSWORD": PASSWORD}
    args = build_parser().parse_args(
        ["demo", "--security-protocol", "SASL_SSL", "--sasl-mechanism", "PLAIN",
         "--sasl-username", "svc"]
    )  # fmt: skip
    with pytest.raises(ConfigError):
        settings_from_env(env)
    settings = settings_from_env(env, kafka=security_from(env, args))
    assert (settings.kafka.protocol, settings.kafka.sasl_password) == ("SASL_SSL", PASSWORD)
