"""Refusing a request that would take a tenant over one of its limits (403)."""

from __future__ import annotations

from collections.abc import Sequence

from virga_events.catalog.quotas import UNLIMITED
from virga_gateway.problems import FieldError, Problem
from virga_gateway.quotas.model import Usage, exceeded, increase, limits
from virga_gateway.state import GatewayState
from virga_runtime.service import Emit


def quota_increase(
    state: GatewayState, after: GatewayState, emits: Sequence[Emit]
) -> dict[str, Usage]:
    """Tenant -> what a request's events (`after` is `state` with them folded) take from it."""
    if not emits:
        return {}
    return increase(state, after, (emit.aggregate_id for emit in emits))


def growing_owners(state: GatewayState, after: GatewayState, emits: Sequence[Emit]) -> set[str]:
    """The tenants a request's events give something new: quota usage or a server group."""
    owners = set(quota_increase(state, after, emits))
    for emit in emits:
        group = after.server_groups.get(emit.aggregate_id)
        if group is not None and emit.aggregate_id not in state.server_groups:
            owners.add(group.tenant_id)
    return owners


def limited(state: GatewayState, grown: dict[str, Usage]) -> dict[str, Usage]:
    """The part of `grown` that some limit bounds (an unlimited resource needs no check)."""
    bound: dict[str, Usage] = {}
    for tenant_id, usage in grown.items():
        limit = limits(state, tenant_id)
        kept = {name: amount for name, amount in usage.items() if limit[name] != UNLIMITED}
        if kept:
            bound[tenant_id] = kept
    return bound


def over_quota(state: GatewayState, grown: dict[str, Usage]) -> Problem | None:
    """The 403 problem naming every limit `grown` would exceed; None when all fit."""
    errors = [
        FieldError(name, f"limit {limit}, in use {used}, requested {wanted}")
        for tenant_id in sorted(grown)
        for name, limit, used, wanted in exceeded(state, tenant_id, grown[tenant_id])
    ]
    if not errors:
        return None
    detail = "over quota: " + "; ".join(f"{e.field}: {e.message}" for e in errors)
    return Problem(403, "quota-exceeded", "Quota exceeded", detail, errors=errors)
