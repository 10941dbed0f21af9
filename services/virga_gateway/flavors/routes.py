"""Flavors: the sizes instances come in."""

from __future__ import annotations

from aiohttp import web

from virga_gateway.context import Call
from virga_gateway.flavors import commands
from virga_gateway.flavors.bodies import CreateFlavor
from virga_gateway.flavors.queries import list_flavors
from virga_gateway.flavors.views import FlavorList, FlavorView
from virga_gateway.routing import Route, json_response, page_params, page_query
from virga_gateway.writes import commit, read_body


async def get_flavors(request: web.Request, call: Call) -> web.Response:
    limit, after = page_query(request)
    page = list_flavors(call.gateway.state, limit=limit, after=after)
    return json_response(page)


async def create_flavor(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, CreateFlavor)
    return await commit(
        request,
        call,
        lambda state, now: commands.create_flavor(state, body),
        body=raw,
        guard=f"flavor:{body.name}",
    )


ROUTES = [
    Route(
        "GET", "/v1/flavors", get_flavors,
        operation_id="listFlavors", summary="List flavors", tag="flavors",
        access="tenant", status=200, response=FlavorList,
        query=page_params("Flavors"), errors=(400,),
    ),
    Route(
        "POST", "/v1/flavors", create_flavor,
        operation_id="createFlavor", summary="Add a flavor", tag="flavors",
        access="admin", status=201, response=FlavorView, request=CreateFlavor, errors=(409,),
    ),
]  # fmt: skip
