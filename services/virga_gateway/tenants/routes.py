"""Tenants and their bearer tokens (admin only)."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from virga_gateway.context import Call
from virga_gateway.routing import Route, json_response, page_params, page_query
from virga_gateway.tenants import commands
from virga_gateway.tenants.bodies import CreateTenant, IssueToken, TenantAction
from virga_gateway.tenants.queries import list_tenants, list_tokens
from virga_gateway.tenants.views import IssuedToken, TenantList, TenantView, TokenList
from virga_gateway.tokens import derive_token
from virga_gateway.writes import commit, read_body


async def create_tenant(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, CreateTenant)
    tenant_id = str(uuid.uuid4())
    return await commit(
        request,
        call,
        lambda state, now: commands.create_tenant(state, body, tenant_id),
        body=raw,
        guard=f"tenant-name:{body.name}",
    )


async def get_tenants(request: web.Request, call: Call) -> web.Response:
    limit, after = page_query(request)
    page = list_tenants(call.gateway.state, limit=limit, after=after)
    return json_response(page)


async def issue_token(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, IssueToken, optional=True)
    tenant_id = request.match_info["id"]
    token_id = str(uuid.uuid4())
    secret = call.gateway.config.token_secret

    def reveal(stored: dict[str, Any]) -> dict[str, Any]:
        # Only the hash was stored: a replay re-derives the same token from its id.
        return {"id": stored["id"], "token": derive_token(secret, stored["id"]), **stored}

    return await commit(
        request,
        call,
        lambda state, now: commands.issue_token(
            state, tenant_id, body, token_id=token_id, now=now, secret=secret
        ),
        body=raw,
        reveal=reveal,
    )


async def get_tokens(request: web.Request, call: Call) -> web.Response:
    limit, after = page_query(request)
    tenant_id = request.match_info["id"]
    return json_response(list_tokens(call.gateway.state, tenant_id, limit=limit, after=after))


async def act_on_tenant(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, TenantAction)
    tenant_id = request.match_info["id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.tenant_action(state, tenant_id, body),
        body=raw,
        guard=f"tenant:{tenant_id}",
    )


async def delete_tenant(request: web.Request, call: Call) -> web.Response:
    tenant_id = request.match_info["id"]
    # Alone at the tenant's gate: no create can slip in between the check that the tenant owns
    # nothing and its deletion (gates.py).
    return await commit(
        request,
        call,
        lambda state, now: commands.delete_tenant(state, tenant_id),
        guard=f"tenant:{tenant_id}",
        excluding=tenant_id,
    )


async def revoke_token(request: web.Request, call: Call) -> web.Response:
    token_id = request.match_info["id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.revoke_token(state, token_id),
        guard=f"token:{token_id}",
    )


ROUTES = [
    Route(
        "POST", "/v1/tenants", create_tenant,
        operation_id="createTenant", summary="Create a tenant", tag="tenants",
        access="admin", status=201, response=TenantView, request=CreateTenant, errors=(409,),
    ),
    Route(
        "GET", "/v1/tenants", get_tenants,
        operation_id="listTenants", summary="List tenants", tag="tenants",
        access="admin", status=200, response=TenantList,
        query=page_params("Tenants"), errors=(400,),
    ),
    Route(
        "POST", "/v1/tenants/{id}/tokens", issue_token,
        operation_id="issueToken", tag="tokens",
        summary="Issue a bearer token for a tenant; the token is shown in this response only",
        access="admin", status=201, response=IssuedToken, request=IssueToken,
        request_optional=True,
    ),
    Route(
        "GET", "/v1/tenants/{id}/tokens", get_tokens,
        operation_id="listTenantTokens", tag="tokens",
        summary="List a tenant's tokens: ids and dates, never the token or its digest",
        access="admin", status=200, response=TokenList, query=page_params("Tokens"),
        errors=(400,),
    ),
    Route(
        "POST", "/v1/tenants/{id}/actions", act_on_tenant,
        operation_id="actOnTenant", tag="tenants",
        summary="Disable a tenant (its tokens are refused, its resources stay) or enable it",
        access="admin", status=200, response=TenantView, request=TenantAction,
    ),
    Route(
        "DELETE", "/v1/tenants/{id}", delete_tenant,
        operation_id="deleteTenant", tag="tenants",
        summary="Delete a tenant that owns nothing (409 names what it still owns, per kind); "
        "its tokens stop working, its name is free again, its history stays in the log",
        access="admin", status=204, errors=(409,),
    ),
    Route(
        "DELETE", "/v1/tokens/{id}", revoke_token,
        operation_id="revokeToken", summary="Revoke a token (again: no-op)", tag="tokens",
        access="admin", status=204,
    ),
]  # fmt: skip
