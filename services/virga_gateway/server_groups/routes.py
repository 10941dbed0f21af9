"""Server groups: affinity and anti-affinity between a tenant's instances."""

from __future__ import annotations

import uuid

from aiohttp import web

from virga_gateway.context import Call
from virga_gateway.routing import Route, json_response, page_params, page_query
from virga_gateway.server_groups import commands
from virga_gateway.server_groups.bodies import CreateServerGroup
from virga_gateway.server_groups.queries import find_server_group, list_server_groups
from virga_gateway.server_groups.views import ServerGroupList, ServerGroupView, server_group_view
from virga_gateway.writes import commit, read_body


async def create_server_group(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, CreateServerGroup)
    group_id = str(uuid.uuid4())
    return await commit(
        request,
        call,
        lambda state, now: commands.create_server_group(state, call.caller, body, group_id),
        body=raw,
    )


async def get_server_groups(request: web.Request, call: Call) -> web.Response:
    limit, after = page_query(request)
    page = list_server_groups(call.gateway.state, call.caller, limit=limit, after=after)
    return json_response(page)


async def get_server_group(request: web.Request, call: Call) -> web.Response:
    state = call.gateway.state
    group = find_server_group(state, call.caller, request.match_info["id"])
    return json_response(server_group_view(state, group))


async def delete_server_group(request: web.Request, call: Call) -> web.Response:
    group_id = request.match_info["id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.delete_server_group(state, call.caller, group_id),
        # An instance requested into the group at the same time holds it too.
        guard=f"server-group:{group_id}",
    )


ROUTES = [
    Route(
        "POST", "/v1/server-groups", create_server_group,
        operation_id="createServerGroup", summary="Create a server group", tag="server-groups",
        access="tenant", status=201, response=ServerGroupView, request=CreateServerGroup,
    ),
    Route(
        "GET", "/v1/server-groups", get_server_groups,
        operation_id="listServerGroups", summary="List server groups", tag="server-groups",
        access="tenant", status=200, response=ServerGroupList,
        query=page_params("Server groups"), errors=(400,),
    ),
    Route(
        "GET", "/v1/server-groups/{id}", get_server_group,
        operation_id="getServerGroup", summary="Show a server group and its members",
        tag="server-groups", access="tenant", status=200, response=ServerGroupView,
    ),
    Route(
        "DELETE", "/v1/server-groups/{id}", delete_server_group,
        operation_id="deleteServerGroup",
        summary="Delete a server group no instance is in (409 while it has members)",
        tag="server-groups", access="tenant", status=204, errors=(409,),
    ),
]  # fmt: skip
