"""How posguard authenticates to Kafka: TLS, mutual TLS, SASL PLAIN and SCRAM.

Named after the Kafka client settings users already have (``security.protocol``,
``sasl.mechanism``, ``sasl.username``, ``ssl.ca.location``, ...): each is an environment variable
``POSGUARD_KAFKA_`` + the setting in capitals with ``_`` for ``.`` and a flag of the same name
(``--security-protocol``). Passwords come from the environment or a file, never from a flag: a
command line is visible to every user of the machine. No secret is ever part of a message or a
``repr``.
"""

from __future__ import annotations

import argparse
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.config import ConfigError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
ENV_PREFIX = "POSGUARD_KAFKA_"


@dataclass(frozen=True, slots=True)
class Setting:
    key: str
    """The Kafka client setting, e.g. ``ssl.ca.location``."""
    help: str
    secret: bool = False

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.upper().replace(".", "_")

    @property
    def flag(self) -> str:
        return "--" + self.key.replace(".", "-")

    @property
    def dest(self) -> str:
        return "kafka_" + self.key.replace(".", "_")


SETTINGS = (
    Setting("security.protocol", f"one of {', '.join(PROTOCOLS)} (default PLAINTEXT)"),
    Setting("sasl.mechanism", f"one of {', '.join(MECHANISMS)}; needed with SASL_*"),
    Setting("sasl.username", "SASL user name"),
    Setting("sasl.password", "SASL password (environment only)", secret=True),
    Setting("sasl.password.file", "file holding the SASL password"),
    Setting(
        "ssl.ca.location",
        "PEM file of the CA(s) that signed the broker's certificate (default: the system's CAs)",
    ),
    Setting("ssl.certificate.location", "PEM client certificate, for mutual TLS"),
    Setting("ssl.key.location", "PEM private key of the client certificate"),
    Setting("ssl.key.password", "password of an encrypted key (environment only)", secret=True),
    Setting("ssl.key.password.file", "file holding the key's password"),
    Setting(
        "ssl.endpoint.identification.algorithm",
        "https (default: the broker's certificate must name the host connected to) or none",
    ),
)
_BY_KEY = {s.key: s for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ca_location: Path | None = None
    certificate_location: Path | None = None
    key_location: Path | None = None
    key_password: str | None = field(default=None, repr=False)
    check_hostname: bool = True

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def describe(self) -> str:
        """One line for logs: the protocol and who, never a secret."""
        parts = [self.protocol]
        if self.uses_sasl:
            parts.append(f"{self.sasl_mechanism} as {self.sasl_username}")
        if self.certificate_location is not None:
            parts.append(f"client certificate {self.certificate_location}")
        return ", ".join(parts)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context every client uses (None without TLS); a file that cannot be loaded
        is a ConfigError naming the setting."""
        if not self.uses_tls:
            return None
        ca = _BY_KEY["ssl.ca.location"]
        try:
            context = ssl.create_default_context(
                cafile=str(self.ca_location) if self.ca_location else None
            )
        except (OSError, ssl.SSLError) as exc:
            reason = _reason(exc)
            raise ConfigError(f"{_named(ca)}: cannot load {self.ca_location}: {reason}") from None
        context.check_hostname = self.check_hostname
        if self.certificate_location is not None:
            try:
                context.load_cert_chain(
                    str(self.certificate_location),
                    str(self.key_location) if self.key_location else None,
                    password=self.key_password,
                )
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"{_named(_BY_KEY['ssl.certificate.location'])} / "
                    f"{_named(_BY_KEY['ssl.key.location'])}: cannot load the client certificate "
                    f"{self.certificate_location} with its key (wrong key password, or a key "
                    f"that does not belong to the certificate?): {_reason(exc)}"
                ) from None
        return context

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's clients (admin, producer, consumer)."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
            kwargs["ssl_check_hostname"] = self.check_hostname
        if self.uses_sasl:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs


def security_env(security: KafkaSecurity) -> dict[str, str]:
    """The environment variables that give a child process the same settings."""
    values = {
        "security.protocol": security.protocol,
        "sasl.mechanism": security.sasl_mechanism,
        "sasl.username": security.sasl_username,
        "sasl.password": security.sasl_password,
        "ssl.ca.location": security.ca_location,
        "ssl.certificate.location": security.certificate_location,
        "ssl.key.location": security.key_location,
        "ssl.key.password": security.key_password,
        "ssl.endpoint.identification.algorithm": "https" if security.check_hostname else "none",
    }
    # Every variable is set (empty: not given), so the parent's own environment cannot add to
    # them; the password files' contents are passed on instead of their names.
    return {s.env: "" if values.get(s.key) is None else str(values[s.key]) for s in SETTINGS}


def _named(setting: Setting) -> str:
    return f"{setting.key} ({setting.env} or {setting.flag})"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    return getattr(exc, "strerror", None) or str(exc)


def add_security_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of every command that talks to Kafka (secrets only through files)."""
    group = parser.add_argument_group(
        "Kafka security",
        f"Each flag overrides its environment variable ({ENV_PREFIX}<SETTING>, e.g. "
        f"{_BY_KEY['security.protocol'].env}). Passwords: {_BY_KEY['sasl.password'].env} and "
        f"{_BY_KEY['ssl.key.password'].env}, or the *-file flags.",
    )
    for s in SETTINGS:
        if not s.secret:
            metavar = "FILE" if s.key.endswith((".file", ".location")) else "VALUE"
            group.add_argument(s.flag, dest=s.dest, metavar=metavar, help=s.help)


def security_from(
    env: Mapping[str, str] | None = None, args: argparse.Namespace | None = None
) -> KafkaSecurity:
    """The settings from flags over environment variables, checked together."""
    env = os.environ if env is None else env

    def get(key: str) -> str | None:
        s = _BY_KEY[key]
        value = getattr(args, s.dest, None) if args is not None and not s.secret else None
        if value is None:
            value = env.get(s.env)
        return value.strip() or None if value is not None else None

    protocol = (get("security.protocol") or "PLAINTEXT").upper()
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"{_named(_BY_KEY['security.protocol'])}={protocol!r}: expected one of "
            f"{', '.join(PROTOCOLS)}"
        )
    security = KafkaSecurity(
        protocol=protocol,
        sasl_mechanism=(get("sasl.mechanism") or "").upper() or None,
        sasl_username=get("sasl.username"),
        sasl_password=_secret(get, "sasl.password"),
        ca_location=_file(get, "ssl.ca.location"),
        certificate_location=_file(get, "ssl.certificate.location"),
        key_location=_file(get, "ssl.key.location"),
        key_password=_secret(get, "ssl.key.password"),
        check_hostname=_check_hostname(get("ssl.endpoint.identification.algorithm")),
    )
    _check_consistent(security)
    return security


def _file(get: Any, key: str) -> Path | None:
    value = get(key)
    if value is None:
        return None
    path = Path(value)
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ConfigError(f"{_named(_BY_KEY[key])}: cannot read {value}")
    return path


def _secret(get: Any, key: str) -> str | None:
    """A password from its variable, or from the file its ``.file`` setting names (the file's
    first line, so an editor's trailing newline does not become part of it)."""
    path = _file(get, f"{key}.file")
    if path is None:
        value: str | None = get(key)
        return value
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0]:
        raise ConfigError(f"{_named(_BY_KEY[key + '.file'])}: {path} is empty")
    return lines[0]


def _check_hostname(value: str | None) -> bool:
    if value is None or value.lower() == "https":
        return True
    if value.lower() in ("none", ""):
        return False
    raise ConfigError(
        f"{_named(_BY_KEY['ssl.endpoint.identification.algorithm'])}={value!r}: "
        "expected https or none"
    )


def _check_consistent(s: KafkaSecurity) -> None:
    named = {key: _named(setting) for key, setting in _BY_KEY.items()}
    protocol = f"with security.protocol {s.protocol}"
    if s.uses_sasl:
        if s.sasl_mechanism not in MECHANISMS:
            raise ConfigError(
                f"{named['sasl.mechanism']}: expected one of {', '.join(MECHANISMS)} {protocol}"
            )
        if s.sasl_username is None:
            raise ConfigError(f"{named['sasl.username']} is needed {protocol}")
        if s.sasl_password is None:
            raise ConfigError(
                f"{named['sasl.password']} (or {named['sasl.password.file']}) is needed {protocol}"
            )
    elif s.sasl_mechanism or s.sasl_username or s.sasl_password:
        raise ConfigError(
            f"SASL settings are given but security.protocol is {s.protocol}: set "
            f"{named['security.protocol']} to SASL_SSL (or SASL_PLAINTEXT)"
        )
    given_tls = [
        key
        for key, value in (
            ("ssl.ca.location", s.ca_location),
            ("ssl.certificate.location", s.certificate_location),
            ("ssl.key.location", s.key_location),
        )
        if value is not None
    ]
    if given_tls and not s.uses_tls:
        raise ConfigError(
            f"{', '.join(given_tls)} given but security.protocol is {s.protocol}: set "
            f"{named['security.protocol']} to SSL (or SASL_SSL)"
        )
    if (s.certificate_location is None) != (s.key_location is None):
        raise ConfigError(
            f"mutual TLS needs both {named['ssl.certificate.location']} and "
            f"{named['ssl.key.location']}"
        )
    if s.key_password is not None and s.key_location is None:
        raise ConfigError(f"{named['ssl.key.password']} is given without a key")
