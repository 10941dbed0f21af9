"""What keypair requests decide, given the projection."""

from __future__ import annotations

from virga_events.catalog import api
from virga_gateway.auth import Principal, owning_tenant
from virga_gateway.keypairs.bodies import ImportKeypair
from virga_gateway.keypairs.model import keypair_id
from virga_gateway.keypairs.openssh import InvalidPublicKey, parse_public_key
from virga_gateway.keypairs.queries import find_keypair
from virga_gateway.keypairs.views import keypair_view
from virga_gateway.outcome import Outcome
from virga_gateway.problems import conflict, invalid
from virga_gateway.state import GatewayState
from virga_runtime.service import Emit


def import_keypair(state: GatewayState, principal: Principal, body: ImportKeypair) -> Outcome:
    """Parse and check the key (422 naming `public_key`); a name the tenant uses is 409."""
    tenant_id = owning_tenant(state, principal, body.tenant_id)
    try:
        key = parse_public_key(body.public_key)
    except InvalidPublicKey as exc:
        raise invalid(422, "public_key", str(exc)) from None
    aggregate = keypair_id(tenant_id, body.name)
    if aggregate in state.keypairs:
        raise conflict(f"a keypair named {body.name} already exists", "name")
    event = api.KeypairImported(
        name=body.name, public_key=key.line, fingerprint=key.fingerprint, type=key.type
    )
    return Outcome(
        201, (Emit(event, aggregate, tenant_id),), lambda s: keypair_view(s.keypairs[aggregate])
    )


def delete_keypair(state: GatewayState, tenant_id: str, name: str) -> Outcome:
    """Instances requested with the key keep their copy of it."""
    keypair = find_keypair(state, tenant_id, name)
    return Outcome(204, (Emit(api.KeypairDeleted(), keypair.id, keypair.tenant_id),))
