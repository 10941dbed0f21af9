"""TLS for the local secure broker: a private CA and the broker's certificate, made with the
``openssl`` command line once per broker directory.

The CA (``ca.pem``) is what clients trust (``VIRGA_KAFKA_SSL_CAFILE``); the broker presents
a certificate for ``127.0.0.1`` and ``localhost`` signed by it, from a PKCS#12 keystore.
Keys never leave ``<broker dir>/tls`` (mode 0700) and survive ``--fresh``, as passwords do.
A real deployment brings its own CA; this one exists so the dev stack and the tests run the
protocol production runs, ``SASL_SSL``.
"""

from __future__ import annotations

import secrets
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = 3650
"""Validity of the CA and the broker certificate: a dev broker outlives no such span."""


class TlsError(Exception):
    """The certificates could not be made (``openssl`` missing or failing)."""


@dataclass(frozen=True, slots=True)
class BrokerTls:
    """The files of one broker's TLS setup."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients verify the broker with."""
        return self.directory / "ca.pem"

    @property
    def keystore(self) -> Path:
        """The broker's key and certificate chain, PKCS#12."""
        return self.directory / "broker.p12"

    @property
    def keystore_password(self) -> str:
        return (self.directory / "keystore.password").read_text().strip()

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only, checking the broker's name."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def ensure(self) -> BrokerTls:
        """Make the CA and the broker's keystore unless they exist; return self."""
        if self.keystore.exists() and self.ca_file.exists():
            return self
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        password_file = self.directory / "keystore.password"
        password_file.touch(mode=0o600)
        password_file.write_text(secrets.token_urlsafe(24))
        d = self.directory
        extensions = d / "broker.ext"
        extensions.write_text(
            "basicConstraints=CA:FALSE\n"
            "keyUsage=digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        )
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(DAYS),
            "-subj", "/CN=Virga dev Kafka CA", "-keyout", str(d / "ca.key"),
            "-out", str(self.ca_file),
        )  # fmt: skip
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", str(d / "broker.key"), "-out", str(d / "broker.csr"),
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", str(d / "broker.csr"), "-CA", str(self.ca_file),
            "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", str(DAYS),
            "-extfile", str(extensions), "-out", str(d / "broker.pem"),
        )  # fmt: skip
        _openssl(
            "pkcs12", "-export", "-in", str(d / "broker.pem"), "-inkey", str(d / "broker.key"),
            "-certfile", str(self.ca_file), "-name", "broker",
            "-passout", f"file:{password_file}", "-out", str(self.keystore),
        )  # fmt: skip
        for key in (d / "ca.key", d / "broker.key", self.keystore):
            key.chmod(0o600)
        return self


def _openssl(*arguments: str) -> None:
    try:
        done = subprocess.run(["openssl", *arguments], capture_output=True, text=True, check=False)
    except FileNotFoundError as error:
        raise TlsError("openssl is not installed: apt-get install openssl") from error
    if done.returncode != 0:
        raise TlsError(f"openssl {arguments[0]} failed: {done.stderr.strip()[-500:]}")
