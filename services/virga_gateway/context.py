"""What a request handler works with: the running gateway and the authenticated caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from virga_gateway.auth import Principal
from virga_gateway.config import GatewayConfig
from virga_gateway.gates import TenantGates
from virga_gateway.idempotency import KeyedLocks
from virga_gateway.runner import GatewayRunner
from virga_gateway.state import GatewayState


@dataclass
class Gateway:
    """One running gateway: its runner (projection + appends), settings and request locks."""

    runner: GatewayRunner
    config: GatewayConfig
    admin_sha256: str
    """Hash of the bootstrap admin token: the gateway is ready once it is in the projection."""
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    gates: TenantGates = field(default_factory=TenantGates)
    """Per-tenant: creates pass together, the tenant's deletion alone (`gates.py`)."""

    @property
    def state(self) -> GatewayState:
        return self.runner.state

    def caught_up(self) -> bool:
        """Caught up with the log, and the bootstrap admin token can be used: requests are
        served (reads from the projection even while the log is away)."""
        return self.runner.ready.is_set() and self.admin_sha256 in self.state.token_ids_by_sha256

    def ready(self) -> bool:
        """Readiness (/healthz): caught up, and the log reachable, so writes can commit."""
        return self.caught_up() and self.runner.log_reachable()

    def health(self) -> str:
        """What /healthz says: ready, rebuilding, or log-unreachable."""
        if not self.caught_up():
            return "rebuilding"
        return "ready" if self.runner.log_reachable() else "log-unreachable"


@dataclass(frozen=True, slots=True)
class Call:
    """One request as a handler sees it."""

    gateway: Gateway
    principal: Principal | None
    """None on public routes only."""
    correlation_id: str

    @property
    def caller(self) -> Principal:
        assert self.principal is not None, "an authenticated route"
        return self.principal


Handler = Callable[[web.Request, Call], Awaitable[web.StreamResponse]]

GATEWAY = web.AppKey("gateway", Gateway)
CORRELATION_ID = web.RequestKey("correlation_id", str)
"""The correlation id of every event the request causes (namespaced once the caller is known)."""
CLIENT_REQUEST_ID = web.RequestKey("client_request_id", str)
"""The client's own X-Request-Id when it sent a sane one, else empty."""
OPENAPI_DOCUMENT = web.AppKey("openapi_document", bytes)
"""The encoded OpenAPI document, built once per app from the route table."""
