"""Networks: a tenant's L2 segments with one IPv4 or IPv6 subnet each."""

from __future__ import annotations

import uuid

from aiohttp import web

from virga_gateway.context import Call
from virga_gateway.networks import commands
from virga_gateway.networks.bodies import CreateNetwork
from virga_gateway.networks.queries import find_network, list_networks
from virga_gateway.networks.views import NetworkList, NetworkView, network_view
from virga_gateway.routing import Route, json_response, page_params, page_query
from virga_gateway.writes import commit, read_body


async def create_network(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, CreateNetwork)
    network_id = str(uuid.uuid4())
    return await commit(
        request,
        call,
        lambda state, now: commands.create_network(state, call.caller, body, network_id),
        body=raw,
    )


async def get_networks(request: web.Request, call: Call) -> web.Response:
    limit, after = page_query(request)
    page = list_networks(call.gateway.state, call.caller, limit=limit, after=after)
    return json_response(page)


async def get_network(request: web.Request, call: Call) -> web.Response:
    network = find_network(call.gateway.state, call.caller, request.match_info["id"])
    return json_response(network_view(network))


async def delete_network(request: web.Request, call: Call) -> web.Response:
    network_id = request.match_info["id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.delete_network(state, call.caller, network_id),
        guard=f"network:{network_id}",
    )


ROUTES = [
    Route(
        "POST", "/v1/networks", create_network,
        operation_id="createNetwork",
        summary="Request a network (202: BUILDING until the controller gives it a VXLAN id)",
        errors=(403,),  # over quota
        tag="networks", access="tenant", status=202, response=NetworkView,
        request=CreateNetwork,
    ),
    Route(
        "GET", "/v1/networks", get_networks,
        operation_id="listNetworks", summary="List networks, oldest first", tag="networks",
        access="tenant", status=200, response=NetworkList,
        query=page_params("Networks"), errors=(400,),
    ),
    Route(
        "GET", "/v1/networks/{id}", get_network,
        operation_id="getNetwork", summary="Show a network", tag="networks",
        access="tenant", status=200, response=NetworkView,
    ),
    Route(
        "DELETE", "/v1/networks/{id}", delete_network,
        operation_id="deleteNetwork",
        summary="Delete a network that has no ports (409 names them)", tag="networks",
        access="tenant", status=202, response=NetworkView, errors=(409,),
    ),
]  # fmt: skip
