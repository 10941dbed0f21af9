"""Quotas: a tenant reads its own limits and usage; admins set defaults and tenants' limits."""

from __future__ import annotations

from aiohttp import web

from virga_gateway.context import Call
from virga_gateway.problems import forbidden, not_found
from virga_gateway.quotas import commands
from virga_gateway.quotas.bodies import SetQuotas
from virga_gateway.quotas.views import QuotaDefaultsView, QuotaView, defaults_view, quota_view
from virga_gateway.routing import Route, json_response
from virga_gateway.writes import commit, read_body


async def get_own_quotas(request: web.Request, call: Call) -> web.Response:
    tenant_id = call.caller.tenant_id
    if tenant_id is None:
        raise forbidden("administrators have no quotas of their own: GET /v1/tenants/{id}/quotas")
    return json_response(quota_view(call.gateway.state, tenant_id))


async def get_tenant_quotas(request: web.Request, call: Call) -> web.Response:
    tenant_id = request.match_info["id"]
    if tenant_id not in call.gateway.state.tenants:
        raise not_found("tenant", tenant_id)
    return json_response(quota_view(call.gateway.state, tenant_id))


async def set_tenant_quotas(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, SetQuotas)
    tenant_id = request.match_info["id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.set_tenant_quotas(state, tenant_id, body, raw),
        body=raw,
        guard=f"quotas:{tenant_id}",
    )


async def get_default_quotas(request: web.Request, call: Call) -> web.Response:
    return json_response(defaults_view(call.gateway.state))


async def set_default_quotas(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, SetQuotas)
    return await commit(
        request,
        call,
        lambda state, now: commands.set_default_quotas(state, body, raw),
        body=raw,
        guard="quota-defaults",
    )


ROUTES = [
    Route(
        "GET", "/v1/quotas", get_own_quotas,
        operation_id="getOwnQuotas", tag="quotas",
        summary="The caller's limits and usage (a tenant's; admins have none: 403)",
        access="tenant", status=200, response=QuotaView, errors=(403,),
    ),
    Route(
        "GET", "/v1/quotas/defaults", get_default_quotas,
        operation_id="getDefaultQuotas", tag="quotas",
        summary="The limits of every tenant without its own",
        access="tenant", status=200, response=QuotaDefaultsView,
    ),
    Route(
        "PUT", "/v1/quotas/defaults", set_default_quotas,
        operation_id="setDefaultQuotas", tag="quotas",
        summary="Change default limits (partial; -1 unlimited, null back to the built-in one)",
        access="admin", status=200, response=QuotaDefaultsView, request=SetQuotas,
    ),
    Route(
        "GET", "/v1/tenants/{id}/quotas", get_tenant_quotas,
        operation_id="getTenantQuotas", tag="quotas",
        summary="A tenant's limits and usage",
        access="admin", status=200, response=QuotaView,
    ),
    Route(
        "PUT", "/v1/tenants/{id}/quotas", set_tenant_quotas,
        operation_id="setTenantQuotas", tag="quotas",
        summary="Change a tenant's own limits (partial; -1 unlimited, null back to the default)",
        access="admin", status=200, response=QuotaView, request=SetQuotas,
    ),
]  # fmt: skip
