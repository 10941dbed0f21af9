"""How the billing service is set up: when a month closes, how often it looks; from the env."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from virga_runtime.env import DEFAULT_NAMESPACE, Env


@dataclass(frozen=True, slots=True)
class BillingConfig:
    """Settings of the billing service (a singleton: the one writer of invoices)."""

    grace_seconds: float = 86400.0
    """How long after a month ends its invoices wait for late usage samples and lifecycle
    events; facts arriving later go into an adjustment on the next invoice."""
    tick_seconds: float = 60.0
    """How often billing looks for months due to be invoiced."""
    namespace: str = DEFAULT_NAMESPACE
    """Topic namespace, as ``KafkaSettings.namespace``."""
    http_port: int | None = None
    """Port for /healthz and /metrics; None serves nothing."""

    def __post_init__(self) -> None:
        if self.grace_seconds < 0:
            raise ValueError(f"grace_seconds must not be negative, got {self.grace_seconds}")
        if self.tick_seconds <= 0:
            raise ValueError(f"tick_seconds must be positive, got {self.tick_seconds}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BillingConfig:
        """Read VIRGA_BILLING_GRACE_SECONDS, VIRGA_BILLING_TICK_SECONDS, VIRGA_NAMESPACE and
        VIRGA_HTTP_PORT; raise SystemExit naming a bad one."""
        env = Env(environ)
        try:
            return cls(
                grace_seconds=env.number("VIRGA_BILLING_GRACE_SECONDS", 86400.0),
                tick_seconds=env.number("VIRGA_BILLING_TICK_SECONDS", 60.0),
                namespace=env.namespace(),
                http_port=env.port("VIRGA_HTTP_PORT"),
            )
        except ValueError as exc:
            raise SystemExit(f"bad billing setting: {exc}") from None
