"""Ports: a MAC and addresses on a network, plugged in on a host for an instance or a user."""

from __future__ import annotations

import uuid

from aiohttp import web

from virga_gateway.context import Call
from virga_gateway.ports import commands
from virga_gateway.ports.bodies import CreatePort, UpdatePort
from virga_gateway.ports.queries import find_port, list_ports
from virga_gateway.ports.views import PortList, PortView, port_view
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


async def create_port(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, CreatePort)
    port_id = str(uuid.uuid4())
    return await commit(
        request,
        call,
        lambda state, now: commands.create_port(state, call.caller, body, port_id),
        body=raw,
        # One network's ports are checked against its free addresses one request at a time.
        guard=f"network:{body.network_id}",
    )


async def get_ports(request: web.Request, call: Call) -> web.Response:
    limit, after = page_query(request)
    network_id = id_query(request, "network_id")
    instance_id = id_query(request, "instance_id")
    page = list_ports(
        call.gateway.state,
        call.caller,
        limit=limit,
        after=after,
        network_id=network_id,
        instance_id=instance_id,
    )
    return json_response(page)


async def get_port(request: web.Request, call: Call) -> web.Response:
    port = find_port(call.gateway.state, call.caller, request.match_info["id"])
    return json_response(port_view(port))


async def update_port(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, UpdatePort)
    port_id = request.match_info["id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.update_port(state, call.caller, port_id, body),
        body=raw,
        guard=f"port:{port_id}",
    )


async def delete_port(request: web.Request, call: Call) -> web.Response:
    port_id = request.match_info["id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.delete_port(state, call.caller, port_id),
        guard=f"port:{port_id}",
    )


ROUTES = [
    Route(
        "POST", "/v1/ports", create_port,
        operation_id="createPort",
        summary="Request a port (202: BUILDING until the controller gives its MAC and address)",
        tag="ports", access="tenant", status=202, response=PortView, request=CreatePort,
        errors=(403, 409),
    ),
    Route(
        "GET", "/v1/ports", get_ports,
        operation_id="listPorts", summary="List ports, oldest first", tag="ports",
        access="tenant", status=200, response=PortList,
        query=(
            *page_params("Ports"),
            QueryParam("network_id", ID_SCHEMA, "Only this network's ports (its id)."),
            QueryParam("instance_id", ID_SCHEMA, "Only this instance's ports (its id)."),
        ),
        errors=(400,),
    ),
    Route(
        "GET", "/v1/ports/{id}", get_port,
        operation_id="getPort", summary="Show a port", tag="ports",
        access="tenant", status=200, response=PortView,
    ),
    Route(
        "PUT", "/v1/ports/{id}", update_port,
        operation_id="updatePort",
        summary="Change a port's security groups (its host applies them within seconds;"
        " a port being deleted: 409)",
        tag="ports", access="tenant", status=200, response=PortView, request=UpdatePort,
        errors=(409,),
    ),
    Route(
        "DELETE", "/v1/ports/{id}", delete_port,
        operation_id="deletePort",
        summary="Delete a port (an instance's port goes with its instance: 409)",
        tag="ports", access="tenant", status=202, response=PortView, errors=(409,),
    ),
]  # fmt: skip
