"""External networks: provider segments an admin makes, whose pools give public addresses."""

from __future__ import annotations

import uuid

from aiohttp import web

from virga_gateway.context import Call
from virga_gateway.external_networks import commands
from virga_gateway.external_networks.bodies import CreateExternalNetwork
from virga_gateway.external_networks.queries import find_external_network, list_external_networks
from virga_gateway.external_networks.views import (
    ExternalNetworkList,
    ExternalNetworkView,
    external_network_view,
)
from virga_gateway.routing import Route, json_response, page_params, page_query
from virga_gateway.writes import commit, read_body


async def create_external_network(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, CreateExternalNetwork)
    network_id = str(uuid.uuid4())
    return await commit(
        request,
        call,
        lambda state, now: commands.create_external_network(state, call.caller, body, network_id),
        body=raw,
    )


async def get_external_networks(request: web.Request, call: Call) -> web.Response:
    limit, after = page_query(request)
    page = list_external_networks(call.gateway.state, call.caller, limit=limit, after=after)
    return json_response(page)


async def get_external_network(request: web.Request, call: Call) -> web.Response:
    network = find_external_network(call.gateway.state, request.match_info["id"])
    return json_response(external_network_view(network, admin=call.caller.is_admin))


async def delete_external_network(request: web.Request, call: Call) -> web.Response:
    network_id = request.match_info["id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.delete_external_network(state, call.caller, network_id),
        # Floating IPs and routers take its addresses under the same guard.
        guard=f"external-network:{network_id}",
    )


ROUTES = [
    Route(
        "POST", "/v1/external-networks", create_external_network,
        operation_id="createExternalNetwork",
        summary="Make an external network (202: BUILDING until the controller takes it)",
        tag="external-networks", access="admin", status=202, response=ExternalNetworkView,
        request=CreateExternalNetwork,
    ),
    Route(
        "GET", "/v1/external-networks", get_external_networks,
        operation_id="listExternalNetworks",
        summary="List external networks, oldest first (every tenant sees them)",
        tag="external-networks", access="tenant", status=200, response=ExternalNetworkList,
        query=page_params("External networks"), errors=(400,),
    ),
    Route(
        "GET", "/v1/external-networks/{id}", get_external_network,
        operation_id="getExternalNetwork", summary="Show an external network",
        tag="external-networks", access="tenant", status=200, response=ExternalNetworkView,
    ),
    Route(
        "DELETE", "/v1/external-networks/{id}", delete_external_network,
        operation_id="deleteExternalNetwork",
        summary="Delete an external network no floating IP or router uses (409 names them)",
        tag="external-networks", access="admin", status=202, response=ExternalNetworkView,
        errors=(409,),
    ),
]  # fmt: skip
