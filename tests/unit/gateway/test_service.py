"""The gateway as a service: its topics, and the admin token it issues exactly once."""

from __future__ import annotations

from tests.unit.gateway.events import envelope, fold

from virga_events.catalog import api
from virga_gateway.config import GatewayConfig
from virga_gateway.service import definition
from virga_gateway.state import GatewayState
from virga_gateway.tokens import admin_token_id, token_sha256

CONFIG = GatewayConfig(admin_token="root", token_secret=b"s" * 32)


def test_it_reads_the_scheduler_and_compute_and_writes_the_api_topic() -> None:
    service = definition(CONFIG, "ns1")
    assert service.name == "gateway"
    assert service.input_topics[:2] == ("ns1.scheduler", "ns1.compute")
    assert "ns1.network" in service.input_topics
    assert service.output_topic == "ns1.api"


def test_the_admin_token_is_issued_once_by_its_hash() -> None:
    on_ready = definition(CONFIG).on_ready
    assert on_ready is not None
    (emit,) = on_ready(GatewayState())
    assert emit.payload == api.TokenIssued(token_sha256=token_sha256("root"), role="admin")  # type: ignore[union-attr]
    assert emit.aggregate_id == admin_token_id(token_sha256("root"))  # type: ignore[union-attr]
    assert emit.tenant_id is None  # type: ignore[union-attr]
    issued = fold(envelope(emit.payload, emit.aggregate_id))  # type: ignore[union-attr]
    assert on_ready(issued) == ()
    other = definition(GatewayConfig(admin_token="new-root", token_secret=b"s" * 32)).on_ready
    assert other is not None
    # Rotation: the new token is issued and the old one revoked, in one transaction.
    rotated = other(issued)
    assert [type(e.payload) for e in rotated] == [api.TokenIssued, api.TokenRevoked]  # type: ignore[union-attr]
    assert rotated[1].aggregate_id == admin_token_id(token_sha256("root"))  # type: ignore[union-attr]
