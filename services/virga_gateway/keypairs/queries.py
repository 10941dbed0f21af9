"""Reads of keypairs as a principal may see them: another tenant's keypair does not exist."""

from __future__ import annotations

from virga_gateway.auth import Principal
from virga_gateway.cursor import OrderKey, owned, take_page
from virga_gateway.keypairs.model import Keypair, keypair_id
from virga_gateway.keypairs.views import KeypairList, KeypairView, keypair_view
from virga_gateway.problems import invalid, not_found
from virga_gateway.state import GatewayState


def whose(principal: Principal, tenant_id: str | None) -> str:
    """The tenant whose keypair a name means: the caller's own (a tenant's `tenant_id` query
    is ignored), or for admins the tenant they name (names are per tenant)."""
    if not principal.is_admin:
        assert principal.tenant_id is not None
        return principal.tenant_id
    if tenant_id is None:
        raise invalid(400, "tenant_id", "is required of admins: keypair names are per tenant")
    return tenant_id


def find_keypair(state: GatewayState, tenant_id: str, name: str) -> Keypair:
    keypair = state.keypairs.get(keypair_id(tenant_id, name))
    if keypair is None:
        raise not_found("keypair", name)
    return keypair


def list_keypairs(
    state: GatewayState, principal: Principal, *, limit: int, after: OrderKey | None = None
) -> KeypairList:
    """One page, oldest first, of the caller's keypairs (every tenant's for admins)."""

    def shown(key: OrderKey) -> KeypairView | None:
        keypair = state.keypairs.get(key[1])
        return None if keypair is None else keypair_view(keypair)

    orders = owned(state.tenant_keypair_order, principal.listed_tenant)
    items, next_cursor = take_page(orders, after, limit, shown)
    return KeypairList(items=items, next=next_cursor)
