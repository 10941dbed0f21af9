"""Keypairs: a tenant's SSH public keys, imported under a name its instances are given."""

from __future__ import annotations

from aiohttp import web

from virga_gateway.context import Call
from virga_gateway.keypairs import commands
from virga_gateway.keypairs.bodies import ImportKeypair
from virga_gateway.keypairs.model import keypair_id
from virga_gateway.keypairs.queries import find_keypair, list_keypairs, whose
from virga_gateway.keypairs.views import KeypairList, KeypairView, keypair_view
from virga_gateway.routing import (
    ID_SCHEMA,
    QueryParam,
    Route,
    id_query,
    json_response,
    page_params,
    page_query,
)
from virga_gateway.writes import commit, read_body


async def import_keypair(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, ImportKeypair)
    owner = call.caller.tenant_id or body.tenant_id or ""
    return await commit(
        request,
        call,
        lambda state, now: commands.import_keypair(state, call.caller, body),
        body=raw,
        # Two imports of one name at once: the second sees the first (409).
        guard=f"keypair:{keypair_id(owner, body.name)}",
    )


async def get_keypairs(request: web.Request, call: Call) -> web.Response:
    limit, after = page_query(request)
    page = list_keypairs(call.gateway.state, call.caller, limit=limit, after=after)
    return json_response(page)


async def get_keypair(request: web.Request, call: Call) -> web.Response:
    tenant_id = whose(call.caller, id_query(request, "tenant_id"))
    keypair = find_keypair(call.gateway.state, tenant_id, request.match_info["name"])
    return json_response(keypair_view(keypair))


async def delete_keypair(request: web.Request, call: Call) -> web.Response:
    tenant_id = whose(call.caller, id_query(request, "tenant_id"))
    name = request.match_info["name"]
    return await commit(
        request,
        call,
        lambda state, now: commands.delete_keypair(state, tenant_id, name),
        guard=f"keypair:{keypair_id(tenant_id, name)}",
    )


_WHOSE = (
    QueryParam(
        "tenant_id",
        ID_SCHEMA,
        "Admins (required): the tenant whose keypair the name is; a tenant's own is meant"
        " for tenants, whatever this says.",
    ),
)

ROUTES = [
    Route(
        "POST", "/v1/keypairs", import_keypair,
        operation_id="importKeypair",
        summary="Import an OpenSSH public key under a name (a name in use: 409)",
        tag="keypairs", access="tenant", status=201, response=KeypairView,
        request=ImportKeypair, errors=(403, 409),  # over quota; the name is taken
    ),
    Route(
        "GET", "/v1/keypairs", get_keypairs,
        operation_id="listKeypairs", summary="List keypairs, oldest first, by pages",
        tag="keypairs", access="tenant", status=200, response=KeypairList,
        query=page_params("Keypairs"), errors=(400,),
    ),
    Route(
        "GET", "/v1/keypairs/{name}", get_keypair,
        operation_id="getKeypair", summary="Show a keypair and its fingerprint",
        tag="keypairs", access="tenant", status=200, response=KeypairView,
        query=_WHOSE, errors=(400,),
    ),
    Route(
        "DELETE", "/v1/keypairs/{name}", delete_keypair,
        operation_id="deleteKeypair",
        summary="Delete a keypair (instances keep the copy of the key they were given)",
        tag="keypairs", access="tenant", status=204, query=_WHOSE, errors=(400,),
    ),
]  # fmt: skip
