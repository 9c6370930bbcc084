"""One connection to the broker before any Kafka client starts, to fail fast and say why.

Kafka clients retry every failure the same way: a wrong password, an untrusted certificate or a
plaintext client on a TLS port all end, after their bootstrap timeout, in "unable to bootstrap"
(kafka-python) or in retries forever (aiokafka). The probe walks the same steps itself (TCP,
TLS handshake, an ``ApiVersions`` request, the SASL handshake and authentication) and turns the
first failure into one sentence naming the setting to fix. Only a broker that does not answer
yet (connection refused: still starting) is waited for.

The SASL exchange uses SaslHandshake v1 and SaslAuthenticate v0 (Kafka 1.0 and later); SCRAM's
client side is kafka-python's.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from typing import NoReturn

from streams.kafka_security import KafkaSecurity

_METADATA, _API_VERSIONS, _SASL_HANDSHAKE, _SASL_AUTHENTICATE = 3, 18, 17, 36
_ANSWER_TIMEOUT_S = 10.0
_SECURITY_HINT = "POSGUARD_KAFKA_SECURITY_PROTOCOL or --security-protocol"


class BrokerUnavailableError(Exception):
    """No broker answered at the bootstrap address within the wait."""


class BrokerSecurityError(Exception):
    """The broker answered but the connection's security does not work; waiting will not help."""


def probe_broker(bootstrap: str, security: KafkaSecurity, wait_s: float = 30.0) -> None:
    """Return once one bootstrap server accepts this client; raise otherwise."""
    servers = [_host_port(server) for server in bootstrap.split(",") if server.strip()]
    deadline = time.monotonic() + wait_s
    context = security.ssl_context()
    while True:
        last: OSError | None = None
        for host, port in servers:
            try:
                sock = socket.create_connection((host, port), timeout=_ANSWER_TIMEOUT_S)
            except OSError as exc:
                last = exc
                continue
            try:
                _check(sock, host, port, security, context)
                return
            finally:
                sock.close()
        if time.monotonic() > deadline:
            reason = last.strerror if last is not None and last.strerror else str(last)
            raise BrokerUnavailableError(
                f"no Kafka broker answers at {bootstrap} (POSGUARD_BROKER_URL): {reason}"
            )
        time.sleep(0.5)


def _host_port(server: str) -> tuple[str, int]:
    server = server.strip().removeprefix("kafka://")
    host, _, port = server.rpartition(":")
    if not host:
        return server, 9092
    return host.strip("[]"), int(port)


def _check(
    sock: socket.socket,
    host: str,
    port: int,
    security: KafkaSecurity,
    context: ssl.SSLContext | None,
) -> None:
    where = f"{host}:{port}"
    conn: socket.socket = sock
    if context is not None:
        conn = _tls(sock, host, where, context)
    try:
        _request(conn, _API_VERSIONS, 0, b"")
    except _ClosedError as closed:
        if context is None:
            raise BrokerSecurityError(
                f"{where} closed the connection without answering: it looks like a TLS "
                f"listener; set the security protocol to SSL or SASL_SSL ({_SECURITY_HINT})"
            ) from None
        if closed.certificate and security.certificate_location is None:
            raise BrokerSecurityError(
                f"{where} requires a client certificate ({closed}): set ssl.certificate.location "
                "and ssl.key.location (POSGUARD_KAFKA_SSL_CERTIFICATE_LOCATION and "
                "POSGUARD_KAFKA_SSL_KEY_LOCATION, or the flags)"
            ) from None
        if closed.certificate:
            raise BrokerSecurityError(
                f"{where} did not accept the client certificate {security.certificate_location} "
                f"({closed}): it must be signed by a CA the broker trusts"
            ) from None
        raise BrokerSecurityError(f"{where} refused the TLS connection: {closed}") from None
    if security.uses_sasl:
        _sasl(conn, where, security)
        return
    try:
        _request(conn, _METADATA, 0, struct.pack(">i", 0))
    except _ClosedError as closed:
        # A SASL listener answers ApiVersions (clients ask it before authenticating) and
        # closes the connection at the first other request.
        raise BrokerSecurityError(
            f"{where} answered but closed the connection at the first request ({closed}): the "
            f"listener probably requires SASL; set the security protocol to SASL_SSL or "
            f"SASL_PLAINTEXT and sasl.mechanism, sasl.username and the password ({_SECURITY_HINT})"
        ) from None


def _tls(sock: socket.socket, host: str, where: str, context: ssl.SSLContext) -> socket.socket:
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        message = exc.verify_message or str(exc.reason)
        if "hostname" in message.lower() or "ip address mismatch" in message.lower():
            raise BrokerSecurityError(
                f"{where}'s certificate does not name {host} ({message}); connect by a name "
                "the certificate holds, or (not recommended) set "
                "ssl.endpoint.identification.algorithm to none"
            ) from None
        raise BrokerSecurityError(
            f"{where}'s certificate is not trusted ({message}); set ssl.ca.location "
            "(POSGUARD_KAFKA_SSL_CA_LOCATION or --ssl-ca-location) to the CA that signed it"
        ) from None
    except ssl.SSLError as exc:
        raise BrokerSecurityError(
            f"TLS handshake with {where} failed ({_ssl_reason(exc)}): is it a TLS listener? "
            f"If not, set the security protocol to PLAINTEXT or SASL_PLAINTEXT ({_SECURITY_HINT})"
        ) from None
    except (TimeoutError, ConnectionError) as exc:
        raise BrokerSecurityError(
            f"TLS handshake with {where} failed ({exc.__class__.__name__}): is it a TLS "
            f"listener? If not, set the security protocol to PLAINTEXT or SASL_PLAINTEXT "
            f"({_SECURITY_HINT})"
        ) from None


def _ssl_reason(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc).lower().replace("_", " ")


class _ClosedError(Exception):
    def __init__(self, reason: str, certificate: bool = False) -> None:
        super().__init__(reason)
        self.certificate = certificate
        """The TLS alert was about the client's certificate."""


def _request(conn: socket.socket, api: int, version: int, body: bytes) -> bytes:
    """Send one request (header v1, client id ``posguard-probe``) and return the response body
    after its correlation id."""
    client = b"posguard-probe"
    header = struct.pack(">hhih", api, version, api, len(client)) + client
    payload = header + body
    try:
        conn.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", _read(conn, 4))[0]
        return _read(conn, size)[4:]
    except ssl.SSLError as exc:
        reason = _ssl_reason(exc)
        raise _ClosedError(reason, certificate="certificate" in reason) from None
    except TimeoutError:
        raise _ClosedError(f"no answer within {_ANSWER_TIMEOUT_S:.0f} s") from None
    except (ConnectionError, struct.error) as exc:
        raise _ClosedError(str(exc) or exc.__class__.__name__) from None


def _read(conn: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise _ClosedError("the broker closed the connection")
        data += chunk
    return bytes(data)


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def _sasl(conn: socket.socket, where: str, security: KafkaSecurity) -> None:
    mechanism = security.sasl_mechanism or ""
    try:
        body = _request(conn, _SASL_HANDSHAKE, 1, _string(mechanism))
    except _ClosedError as closed:
        raise BrokerSecurityError(f"{where}: SASL handshake failed: {closed}") from None
    error, count = struct.unpack(">hi", body[:6])
    offered, at = [], 6
    for _ in range(max(count, 0)):
        (length,) = struct.unpack(">h", body[at : at + 2])
        offered.append(body[at + 2 : at + 2 + length].decode())
        at += 2 + length
    if error == 33 or mechanism not in offered:  # UNSUPPORTED_SASL_MECHANISM
        raise BrokerSecurityError(
            f"{where} does not offer SASL mechanism {mechanism} on this listener (it offers "
            f"{', '.join(offered) or 'none'}); set sasl.mechanism (POSGUARD_KAFKA_SASL_MECHANISM "
            "or --sasl-mechanism)"
        )
    if error:
        raise BrokerSecurityError(f"{where}: SASL handshake failed with error code {error}")
    username, password = security.sasl_username or "", security.sasl_password or ""
    if mechanism == "PLAIN":
        _authenticate(conn, where, username, b"\0" + username.encode() + b"\0" + password.encode())
        return
    # Imported here: every command imports this module, and kafka-python takes a while.
    from kafka.net.sasl.scram import ScramClient  # noqa: PLC0415

    scram = ScramClient(username, password, mechanism)
    first = _authenticate(conn, where, username, scram.first_message())
    try:
        scram.process_server_first_message(first)
    except ValueError:
        _refused(where, username, "")
    final = _authenticate(conn, where, username, scram.final_message())
    try:
        scram.process_server_final_message(final)
    except ValueError:
        _refused(where, username, "the server's signature does not match")


def _authenticate(conn: socket.socket, where: str, username: str, token: bytes) -> bytes:
    try:
        body = _request(conn, _SASL_AUTHENTICATE, 0, struct.pack(">i", len(token)) + token)
    except _ClosedError as closed:
        _refused(where, username, str(closed))
    (error,) = struct.unpack(">h", body[:2])
    (length,) = struct.unpack(">h", body[2:4])
    at = 4 + max(length, 0)
    if error:
        _refused(where, username, body[4:at].decode(errors="replace") if length > 0 else "")
    (size,) = struct.unpack(">i", body[at : at + 4])
    return body[at + 4 : at + 4 + max(size, 0)]


def _refused(where: str, username: str, detail: str) -> NoReturn:
    # The broker's own message names the user and mechanism, never the password.
    raise BrokerSecurityError(
        f"{where} refused SASL authentication for user {username!r}"
        + (f" ({detail})" if detail else "")
        + ": check sasl.username and the password (POSGUARD_KAFKA_SASL_PASSWORD or "
        "--sasl-password-file) and sasl.mechanism"
    )
