"""Floating IPs: a tenant's public address, pointed at one of its ports (1:1 NAT)."""

from __future__ import annotations

import uuid

from aiohttp import web

from virga_gateway.context import Call
from virga_gateway.floating_ips import commands
from virga_gateway.floating_ips.bodies import CreateFloatingIp, UpdateFloatingIp
from virga_gateway.floating_ips.queries import find_floating_ip, list_floating_ips
from virga_gateway.floating_ips.views import FloatingIpList, FloatingIpView, floating_ip_view
from virga_gateway.routing import Route, json_response, page_params, page_query
from virga_gateway.writes import commit, read_body


async def create_floating_ip(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, CreateFloatingIp)
    fip_id = str(uuid.uuid4())
    return await commit(
        request,
        call,
        lambda state, now: commands.create_floating_ip(state, call.caller, body, fip_id),
        body=raw,
        # One external network's addresses are checked against its pools one at a time.
        guard=f"external-network:{body.external_network_id}",
    )


async def get_floating_ips(request: web.Request, call: Call) -> web.Response:
    limit, after = page_query(request)
    page = list_floating_ips(call.gateway.state, call.caller, limit=limit, after=after)
    return json_response(page)


async def get_floating_ip(request: web.Request, call: Call) -> web.Response:
    fip = find_floating_ip(call.gateway.state, call.caller, request.match_info["id"])
    return json_response(floating_ip_view(fip))


async def update_floating_ip(request: web.Request, call: Call) -> web.Response:
    fip_id = request.match_info["id"]
    body, raw = await read_body(request, UpdateFloatingIp)
    return await commit(
        request,
        call,
        lambda state, now: commands.update_floating_ip(state, call.caller, fip_id, body),
        body=raw,
        # A port takes one floating IP: associations are checked one at a time per tenant.
        guard=f"floating-ips:{call.caller.tenant_id}",
    )


async def delete_floating_ip(request: web.Request, call: Call) -> web.Response:
    fip_id = request.match_info["id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.delete_floating_ip(state, call.caller, fip_id),
        guard=f"floating-ips:{call.caller.tenant_id}",
    )


ROUTES = [
    Route(
        "POST", "/v1/floating-ips", create_floating_ip,
        operation_id="createFloatingIp",
        summary="Take a public address from an external network (202: BUILDING until the"
        " controller gives it)",
        tag="floating-ips", access="tenant", status=202, response=FloatingIpView,
        request=CreateFloatingIp, errors=(403, 409),
    ),
    Route(
        "GET", "/v1/floating-ips", get_floating_ips,
        operation_id="listFloatingIps", summary="List floating IPs, oldest first",
        tag="floating-ips", access="tenant", status=200, response=FloatingIpList,
        query=page_params("Floating IPs"), errors=(400,),
    ),
    Route(
        "GET", "/v1/floating-ips/{id}", get_floating_ip,
        operation_id="getFloatingIp", summary="Show a floating IP", tag="floating-ips",
        access="tenant", status=200, response=FloatingIpView,
    ),
    Route(
        "PUT", "/v1/floating-ips/{id}", update_floating_ip,
        operation_id="updateFloatingIp",
        summary="Point a floating IP at one of your ports, or (null) at none (409 if the port"
        " has another)",
        tag="floating-ips", access="tenant", status=202, response=FloatingIpView,
        request=UpdateFloatingIp, errors=(409,),
    ),
    Route(
        "DELETE", "/v1/floating-ips/{id}", delete_floating_ip,
        operation_id="deleteFloatingIp", summary="Release a floating IP (its address is free)",
        tag="floating-ips", access="tenant", status=202, response=FloatingIpView,
    ),
]  # fmt: skip
