"""Routers: a tenant's external address (SNAT) and the networks routed through it."""

from __future__ import annotations

import uuid

from aiohttp import web

from virga_gateway.context import Call
from virga_gateway.routers import commands
from virga_gateway.routers.bodies import AddRouterInterface, CreateRouter
from virga_gateway.routers.queries import find_router, list_routers
from virga_gateway.routers.views import RouterList, RouterView, router_view
from virga_gateway.routing import Route, json_response, page_params, page_query
from virga_gateway.writes import commit, read_body


async def create_router(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, CreateRouter)
    router_id = str(uuid.uuid4())
    return await commit(
        request,
        call,
        lambda state, now: commands.create_router(state, call.caller, body, router_id),
        body=raw,
        guard=f"external-network:{body.external_network_id}",
    )


async def get_routers(request: web.Request, call: Call) -> web.Response:
    limit, after = page_query(request)
    return json_response(list_routers(call.gateway.state, call.caller, limit=limit, after=after))


async def get_router(request: web.Request, call: Call) -> web.Response:
    router = find_router(call.gateway.state, call.caller, request.match_info["id"])
    return json_response(router_view(router))


async def delete_router(request: web.Request, call: Call) -> web.Response:
    router_id = request.match_info["id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.delete_router(state, call.caller, router_id),
        guard=f"router:{router_id}",
    )


async def add_interface(request: web.Request, call: Call) -> web.Response:
    router_id = request.match_info["id"]
    body, raw = await read_body(request, AddRouterInterface)
    return await commit(
        request,
        call,
        lambda state, now: commands.add_interface(state, call.caller, router_id, body),
        body=raw,
        # A network takes one router, and is not deleted meanwhile (the same guard).
        guard=f"network:{body.network_id}",
    )


async def remove_interface(request: web.Request, call: Call) -> web.Response:
    router_id, network_id = request.match_info["id"], request.match_info["network_id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.remove_interface(state, call.caller, router_id, network_id),
        guard=f"network:{network_id}",
    )


ROUTES = [
    Route(
        "POST", "/v1/routers", create_router,
        operation_id="createRouter",
        summary="Request a router with an address on an external network (202: BUILDING until"
        " the controller gives it)",
        tag="routers", access="tenant", status=202, response=RouterView, request=CreateRouter,
        errors=(403, 409),
    ),
    Route(
        "GET", "/v1/routers", get_routers,
        operation_id="listRouters", summary="List routers, oldest first", tag="routers",
        access="tenant", status=200, response=RouterList, query=page_params("Routers"),
        errors=(400,),
    ),
    Route(
        "GET", "/v1/routers/{id}", get_router,
        operation_id="getRouter", summary="Show a router and its interfaces", tag="routers",
        access="tenant", status=200, response=RouterView,
    ),
    Route(
        "DELETE", "/v1/routers/{id}", delete_router,
        operation_id="deleteRouter",
        summary="Delete a router that has no interfaces (409 names their networks)",
        tag="routers", access="tenant", status=202, response=RouterView, errors=(409,),
    ),
    Route(
        "POST", "/v1/routers/{id}/interfaces", add_interface,
        operation_id="addRouterInterface",
        summary="Attach one of your networks to the router (one router per network: 409)",
        tag="routers", access="tenant", status=202, response=RouterView,
        request=AddRouterInterface, errors=(409,),
    ),
    Route(
        "DELETE", "/v1/routers/{id}/interfaces/{network_id}", remove_interface,
        operation_id="removeRouterInterface",
        summary="Detach a network from the router (409 names the floating IPs pointed at its"
        " ports)",
        tag="routers", access="tenant", status=202, response=RouterView, errors=(409,),
    ),
]  # fmt: skip
