"""How a Virga process reaches Kafka; read from the environment in one place."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from virga_runtime.env import DEFAULT_NAMESPACE, Env

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
REPLICATION_VARIABLE = "VIRGA_KAFKA_REPLICATION_FACTOR"
MIN_INSYNC_VARIABLE = "VIRGA_KAFKA_MIN_INSYNC_REPLICAS"


class KafkaSettingsError(ValueError):
    """The Kafka security settings in the environment are incomplete or contradictory."""


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Connection settings shared by every client a service opens."""

    bootstrap_servers: str = "127.0.0.1:9092"
    """Comma-separated host:port list (env VIRGA_KAFKA_BOOTSTRAP)."""
    client_id: str = "virga"
    """Client id prefix shown in broker logs and quotas."""
    security: dict[str, Any] = field(default_factory=dict)
    """Extra aiokafka keyword arguments for SASL/TLS (security_protocol, sasl_mechanism...):
    every producer, consumer and admin client of Virga is built with them."""
    namespace: str = DEFAULT_NAMESPACE
    """Prefix of every topic and transactional id (env VIRGA_NAMESPACE): several Virga
    deployments, or test stacks, can share one Kafka cluster."""
    replication_factor: int | None = None
    """Copies of each partition of a topic Virga creates, and the least a service accepts
    (env VIRGA_KAFKA_REPLICATION_FACTOR); None: 3 on a cluster of three or more brokers, else
    1 (`virga_eventlog.replication`)."""
    min_insync_replicas: int | None = None
    """`min.insync.replicas` of those topics (env VIRGA_KAFKA_MIN_INSYNC_REPLICAS); None: 2
    with 3 or more copies, else 1."""

    @classmethod
    def from_env(
        cls, client_id: str = "virga", environ: Mapping[str, str] | None = None
    ) -> KafkaSettings:
        env = os.environ if environ is None else environ
        factor, min_insync = replication_from_env(env)
        return cls(
            bootstrap_servers=env.get("VIRGA_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            client_id=client_id,
            security=security_from_env(env),
            namespace=Env(env).namespace(),
            replication_factor=factor,
            min_insync_replicas=min_insync,
        )

    def client_kwargs(self) -> dict[str, Any]:
        return {"bootstrap_servers": self.bootstrap_servers, **self.security}

    def as_user(
        self, username: str, password: str, mechanism: str = "SCRAM-SHA-512"
    ) -> KafkaSettings:
        """The same settings authenticating as `username` over SASL (the TLS part is kept)."""
        tls = self.security.get("security_protocol") in ("SSL", "SASL_SSL")
        security = {
            **{k: v for k, v in self.security.items() if k == "ssl_context"},
            "security_protocol": "SASL_SSL" if tls else "SASL_PLAINTEXT",
            "sasl_mechanism": mechanism,
            "sasl_plain_username": username,
            "sasl_plain_password": password,
        }
        return replace(self, security=security)


def replication_from_env(env: Mapping[str, str]) -> tuple[int | None, int | None]:
    """`replication_factor` and `min_insync_replicas` from the environment (unset: None)."""
    factor = _count(env, REPLICATION_VARIABLE)
    min_insync = _count(env, MIN_INSYNC_VARIABLE)
    if factor is not None and min_insync is not None and min_insync > factor:
        raise KafkaSettingsError(
            f"{MIN_INSYNC_VARIABLE}={min_insync} is more than {REPLICATION_VARIABLE}={factor}"
        )
    return factor, min_insync


def _count(env: Mapping[str, str], name: str) -> int | None:
    raw = Env(env).text(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise KafkaSettingsError(f"{name} must be a whole number of at least 1, got {raw!r}")
    return value


def security_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """aiokafka's security keyword arguments from ``VIRGA_KAFKA_*`` variables.

    Nothing set means PLAINTEXT (the dev stack). A half-configured identity is an error at
    start rather than an anonymous connection the broker would refuse later with a vaguer
    message.
    """
    protocol = env.get("VIRGA_KAFKA_SECURITY_PROTOCOL", "").strip().upper()
    if not protocol or protocol == "PLAINTEXT":
        return {}
    if protocol not in SECURITY_PROTOCOLS:
        raise KafkaSettingsError(
            f"VIRGA_KAFKA_SECURITY_PROTOCOL={protocol!r}: expected one of {SECURITY_PROTOCOLS}"
        )
    security: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL_"):
        mechanism = env.get("VIRGA_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512").strip().upper()
        if mechanism not in SASL_MECHANISMS:
            raise KafkaSettingsError(
                f"VIRGA_KAFKA_SASL_MECHANISM={mechanism!r}: expected one of {SASL_MECHANISMS}"
            )
        username = env.get("VIRGA_KAFKA_USERNAME", "")
        if not username:
            raise KafkaSettingsError(f"{protocol} needs VIRGA_KAFKA_USERNAME (the service's user)")
        security["sasl_mechanism"] = mechanism
        security["sasl_plain_username"] = username
        security["sasl_plain_password"] = _password(env)
    if protocol.endswith("SSL"):
        security["ssl_context"] = _ssl_context(env)
    return security


def _password(env: Mapping[str, str]) -> str:
    """``VIRGA_KAFKA_PASSWORD_FILE`` (preferred: not visible in /proc/<pid>/environ) or
    ``VIRGA_KAFKA_PASSWORD``."""
    if path := env.get("VIRGA_KAFKA_PASSWORD_FILE"):
        try:
            return Path(path).read_text().strip()
        except OSError as error:
            raise KafkaSettingsError(f"VIRGA_KAFKA_PASSWORD_FILE: {error}") from None
    password = env.get("VIRGA_KAFKA_PASSWORD")
    if not password:
        raise KafkaSettingsError("SASL needs VIRGA_KAFKA_PASSWORD_FILE or VIRGA_KAFKA_PASSWORD")
    return password


def _ssl_context(env: Mapping[str, str]) -> ssl.SSLContext:
    """Verifies the broker against ``VIRGA_KAFKA_SSL_CAFILE`` (else the system store); presents
    ``VIRGA_KAFKA_SSL_CERTFILE``/``VIRGA_KAFKA_SSL_KEYFILE`` when set (mutual TLS)."""
    try:
        context = ssl.create_default_context(cafile=env.get("VIRGA_KAFKA_SSL_CAFILE") or None)
        if certfile := env.get("VIRGA_KAFKA_SSL_CERTFILE"):
            context.load_cert_chain(certfile, env.get("VIRGA_KAFKA_SSL_KEYFILE") or None)
    except (OSError, ssl.SSLError) as error:
        raise KafkaSettingsError(f"Kafka TLS settings: {error}") from None
    return context
