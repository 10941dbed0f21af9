"""How a Virga process reaches Kafka; read from the environment in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Connection settings shared by every client a service opens."""

    bootstrap_servers: str = "127.0.0.1:9092"
    """Comma-separated host:port list (env VIRGA_KAFKA_BOOTSTRAP)."""
    client_id: str = "virga"
    """Client id prefix shown in broker logs and quotas."""
    security: dict[str, Any] = field(default_factory=dict)
    """Extra aiokafka keyword arguments for SASL/TLS (security_protocol, sasl_mechanism...)."""
    namespace: str = "virga"
    """Prefix of every topic and transactional id (env VIRGA_NAMESPACE): several Virga
    deployments, or test stacks, can share one Kafka cluster."""

    @classmethod
    def from_env(cls, client_id: str = "virga") -> KafkaSettings:
        security: dict[str, Any] = {}
        protocol = os.environ.get("VIRGA_KAFKA_SECURITY_PROTOCOL")
        if protocol:
            security["security_protocol"] = protocol
            mechanism = os.environ.get("VIRGA_KAFKA_SASL_MECHANISM")
            if mechanism:
                security["sasl_mechanism"] = mechanism
                security["sasl_plain_username"] = os.environ.get("VIRGA_KAFKA_USERNAME", "")
                security["sasl_plain_password"] = os.environ.get("VIRGA_KAFKA_PASSWORD", "")
        return cls(
            bootstrap_servers=os.environ.get("VIRGA_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            client_id=client_id,
            security=security,
            namespace=os.environ.get("VIRGA_NAMESPACE", "virga"),
        )

    def client_kwargs(self) -> dict[str, Any]:
        return {"bootstrap_servers": self.bootstrap_servers, **self.security}
