"""Instances: create, read, list, act on, delete, and their event history."""

from __future__ import annotations

import uuid

from aiohttp import web

from virga_gateway.context import Call
from virga_gateway.instances import commands
from virga_gateway.instances.bodies import CreateInstance, InstanceAction, MigrateInstance
from virga_gateway.instances.model import INSTANCE_STATUSES, InstanceStatus
from virga_gateway.instances.queries import find_instance, list_instances
from virga_gateway.instances.views import (
    InstanceEvent,
    InstanceList,
    InstanceView,
    MigrationView,
    instance_event,
    instance_view,
)
from virga_gateway.problems import FieldError, invalid, invalid_fields
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


async def create_instance(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, CreateInstance)
    instance_id = str(uuid.uuid4())
    return await commit(
        request,
        call,
        lambda state, now: commands.create_instance(state, call.caller, body, instance_id),
        body=raw,
        # One at a time with the deletion of its server group, which must not lose a member.
        guard=None if body.server_group is None else f"server-group:{body.server_group}",
    )


async def get_instances(request: web.Request, call: Call) -> web.Response:
    limit, after = page_query(request)
    status: InstanceStatus | None = None
    if (wanted := request.query.get("status")) is not None:
        if wanted not in INSTANCE_STATUSES:
            raise invalid(400, "status", f"must be one of {', '.join(INSTANCE_STATUSES)}")
        status = next(s for s in INSTANCE_STATUSES if s == wanted)
    page = list_instances(
        call.gateway.state,
        call.caller,
        limit=limit,
        after=after,
        status=status,
        tenant_id=id_query(request, "tenant_id"),
    )
    return json_response(page)


async def get_instance(request: web.Request, call: Call) -> web.Response:
    instance = find_instance(call.gateway.state, call.caller, request.match_info["id"])
    return json_response(instance_view(instance))


async def get_instance_events(request: web.Request, call: Call) -> web.Response:
    instance = find_instance(call.gateway.state, call.caller, request.match_info["id"])
    return json_response([instance_event(entry) for entry in instance.history])


async def act_on_instance(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, InstanceAction)
    instance_id = request.match_info["id"]
    if body.action == "live-migrate":  # the migrate route's, as an action (admins only)
        call.caller.require_admin()
        migrate, flow_id = MigrateInstance(host=body.host), str(uuid.uuid4())
        return await commit(
            request,
            call,
            lambda state, now: commands.migrate_instance(
                state, call.caller, instance_id, migrate, flow_id, as_action=True
            ),
            body=raw,
            guard=f"instance:{instance_id}",
        )
    if body.action == "evacuate":  # admins only: the instance's host is down
        call.caller.require_admin()
        flow_id = str(uuid.uuid4())
        return await commit(
            request,
            call,
            lambda state, now: commands.evacuate_instance(
                state, call.caller, instance_id, body.host, flow_id
            ),
            body=raw,
            guard=f"instance:{instance_id}",
        )
    if body.host is not None:
        raise invalid_fields(
            [FieldError("host", "only the live-migrate and evacuate actions take a host")]
        )
    if body.action == "resize":
        if body.flavor is None:
            raise invalid_fields([FieldError("flavor", "the resize action needs a flavor")])
        flavor, flow_id = body.flavor, str(uuid.uuid4())
        return await commit(
            request,
            call,
            lambda state, now: commands.resize_instance(
                state, call.caller, instance_id, flavor, flow_id
            ),
            body=raw,
            guard=f"instance:{instance_id}",
        )
    if body.flavor is not None:
        raise invalid_fields([FieldError("flavor", "only the resize action takes a flavor")])
    return await commit(
        request,
        call,
        lambda state, now: commands.instance_action(state, call.caller, instance_id, body),
        body=raw,
        guard=f"instance:{instance_id}",
    )


async def migrate_instance(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, MigrateInstance, optional=True)
    instance_id, flow_id = request.match_info["id"], str(uuid.uuid4())
    return await commit(
        request,
        call,
        lambda state, now: commands.migrate_instance(
            state, call.caller, instance_id, body, flow_id
        ),
        body=raw,
        guard=f"instance:{instance_id}",
    )


async def delete_instance(request: web.Request, call: Call) -> web.Response:
    instance_id = request.match_info["id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.delete_instance(state, call.caller, instance_id),
        guard=f"instance:{instance_id}",
    )


_LIST_QUERY = (
    *page_params("Instances"),
    QueryParam(
        "status",
        {"type": "string", "enum": list(INSTANCE_STATUSES)},
        "Only instances in this status; DELETED ones are listed only when asked for.",
    ),
    QueryParam("tenant_id", ID_SCHEMA, "Admins: only this tenant's instances (its id)."),
)

ROUTES = [
    Route(
        "POST", "/v1/instances", create_instance,
        operation_id="createInstance", summary="Request an instance", tag="instances",
        errors=(403, 409),  # over quota; its network's addresses are all taken
        access="tenant", status=202, response=InstanceView, request=CreateInstance,
    ),
    Route(
        "GET", "/v1/instances", get_instances,
        operation_id="listInstances", summary="List instances, oldest first, by pages",
        tag="instances", access="tenant", status=200, response=InstanceList,
        query=_LIST_QUERY, errors=(400,),
    ),
    Route(
        "GET", "/v1/instances/{id}", get_instance,
        operation_id="getInstance", summary="Show an instance", tag="instances",
        access="tenant", status=200, response=InstanceView,
    ),
    Route(
        "DELETE", "/v1/instances/{id}", delete_instance,
        operation_id="deleteInstance", summary="Delete an instance (again: no-op)",
        tag="instances", access="tenant", status=202, response=InstanceView,
    ),
    Route(
        "POST", "/v1/instances/{id}/actions", act_on_instance,
        operation_id="actOnInstance",
        summary=(
            "Start, stop, reboot or resize (a flavor) an instance; live-migrate it, or evacuate"
            " it off a host that is down (admins)"
        ),
        tag="instances", access="tenant", status=202, response=InstanceView,
        request=InstanceAction, errors=(403, 404, 409),
    ),
    Route(
        "POST", "/v1/instances/{id}/migrate", migrate_instance,
        operation_id="migrateInstance",
        summary="Live-migrate a running instance to another host (MIGRATING, then RUNNING there)",
        tag="instances", access="admin", status=202, response=MigrationView,
        request=MigrateInstance, request_optional=True, errors=(409,),
    ),
    Route(
        "GET", "/v1/instances/{id}/events", get_instance_events,
        operation_id="listInstanceEvents",
        summary="An instance's history across services, in event-time order",
        tag="instances", access="tenant", status=200, response=list[InstanceEvent],
    ),
]  # fmt: skip
