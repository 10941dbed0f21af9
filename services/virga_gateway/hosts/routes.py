"""Hosts and allocation ratios (admin only)."""

from __future__ import annotations

import uuid

from aiohttp import web

from virga_gateway.context import Call
from virga_gateway.hosts import commands
from virga_gateway.hosts.bodies import HostAction, SetAllocationRatios
from virga_gateway.hosts.queries import list_hosts
from virga_gateway.hosts.views import AllocationRatiosView, HostList, HostView
from virga_gateway.routing import Route, json_response, page_params, page_query
from virga_gateway.writes import commit, read_body


async def get_hosts(request: web.Request, call: Call) -> web.Response:
    limit, after = page_query(request)
    page = list_hosts(call.gateway.state, limit=limit, after=after)
    return json_response(page)


async def act_on_host(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, HostAction)
    name, flow_id = request.match_info["name"], str(uuid.uuid4())
    return await commit(
        request,
        call,
        lambda state, now: commands.host_action(state, name, body, flow_id),
        body=raw,
        guard=f"host:{name}",
    )


async def set_allocation_ratios(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, SetAllocationRatios)
    return await commit(
        request, call, lambda state, now: commands.set_allocation_ratios(state, body), body=raw
    )


ROUTES = [
    Route(
        "GET", "/v1/hosts", get_hosts,
        operation_id="listHosts", summary="List hosts with capacity and allocation",
        tag="hosts", access="admin", status=200, response=HostList,
        query=page_params("Hosts"), errors=(400,),
    ),
    Route(
        "POST", "/v1/hosts/{name}/actions", act_on_host,
        operation_id="actOnHost",
        summary="Disable or enable a host for scheduling, or drain it (disable it and"
        " live-migrate its running instances away, a bounded number at a time)",
        tag="hosts", access="admin", status=202, response=HostView, request=HostAction,
        errors=(409,),
    ),
    Route(
        "PUT", "/v1/allocation-ratios", set_allocation_ratios,
        operation_id="setAllocationRatios",
        summary="Set overcommit ratios, for one host or as every host's default",
        tag="hosts", access="admin", status=200, response=AllocationRatiosView,
        request=SetAllocationRatios,
    ),
]  # fmt: skip
