"""Test certificates made at test time: a CA, the broker's certificate and keystores, a client
certificate for mutual TLS, and a second CA nobody trusts (openssl and the JDK's keytool)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

STORE_PASSWORD = "store-secret"


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    dir: Path
    ca: Path
    """PEM: the CA that signed the broker's and the client's certificates."""
    other_ca: Path
    """PEM: a CA that signed nothing here (a client trusting only it must refuse the broker)."""
    client_cert: Path
    client_key: Path
    client_key_encrypted: Path
    """The client key, encrypted with ``client_key_password``."""
    client_key_password: str
    keystore: Path
    """PKCS#12: the broker's key and certificate (for hosts 127.0.0.1 and kafka.test)."""
    truststore: Path
    """PKCS#12 made by keytool: the CA, for the broker to check client certificates."""


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


def _ca(d: Path, name: str) -> tuple[Path, Path]:
    key, cert = d / f"{name}.key", d / f"{name}.pem"
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN=posguard test {name}", "-keyout", str(key), "-out", str(cert))  # fmt: skip
    return key, cert


def _signed(d: Path, name: str, ca: tuple[Path, Path], subject: str, ext: str) -> tuple[Path, Path]:
    key, csr, cert, extfile = (d / f"{name}{s}" for s in (".key", ".csr", ".pem", ".ext"))
    extfile.write_text(ext + "\n")
    _run("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
         "-keyout", str(key), "-out", str(csr))  # fmt: skip
    _run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca[1]), "-CAkey", str(ca[0]),
         "-CAcreateserial", "-days", "2", "-extfile", str(extfile), "-out", str(cert))  # fmt: skip
    return key, cert


def make_tls_material(d: Path) -> TlsMaterial:
    """Everything a TLS test needs, in ``d``; raises RuntimeError when openssl or keytool is
    missing."""
    for tool in ("openssl", "keytool"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed")
    d.mkdir(parents=True, exist_ok=True)
    ca = _ca(d, "ca")
    _, other_ca = _ca(d, "other-ca")
    server = _signed(
        d, "broker", ca, "/CN=kafka.test", "subjectAltName=IP:127.0.0.1,DNS:kafka.test"
    )
    client = _signed(d, "client", ca, "/CN=posguard-client", "extendedKeyUsage=clientAuth")
    keystore, truststore = d / "broker.p12", d / "truststore.p12"
    _run("openssl", "pkcs12", "-export", "-in", str(server[1]), "-inkey", str(server[0]),
         "-certfile", str(ca[1]), "-name", "broker", "-out", str(keystore),
         "-passout", f"pass:{STORE_PASSWORD}")  # fmt: skip
    _run("keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", str(ca[1]),
         "-keystore", str(truststore), "-storetype", "PKCS12",
         "-storepass", STORE_PASSWORD)  # fmt: skip
    encrypted, password = d / "client-encrypted.key", "key-secret-42"
    _run("openssl", "pkey", "-in", str(client[0]), "-aes256", "-out", str(encrypted),
         "-passout", f"pass:{password}")  # fmt: skip
    return TlsMaterial(
        dir=d,
        ca=ca[1],
        other_ca=other_ca,
        client_cert=client[1],
        client_key=client[0],
        client_key_encrypted=encrypted,
        client_key_password=password,
        keystore=keystore,
        truststore=truststore,
    )
