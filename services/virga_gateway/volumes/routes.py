"""Volumes: create (blank or a clone), read, list, snapshot (and delete a snapshot), extend,
delete; and attaching them to instances and detaching them."""

from __future__ import annotations

import uuid

from aiohttp import web

from virga_gateway.context import Call
from virga_gateway.routing import (
    ID_SCHEMA,
    QueryParam,
    Route,
    id_query,
    json_response,
    page_params,
    page_query,
)
from virga_gateway.volumes import commands
from virga_gateway.volumes.bodies import (
    AttachVolumeBody,
    CreateVolumeBody,
    CreateVolumeSnapshot,
    VolumeAction,
)
from virga_gateway.volumes.queries import find_volume, list_volumes
from virga_gateway.volumes.views import VolumeList, VolumeSnapshotView, VolumeView, volume_view
from virga_gateway.writes import commit, read_body


async def create_volume(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, CreateVolumeBody)
    volume_id = str(uuid.uuid4())
    return await commit(
        request,
        call,
        lambda state, now: commands.create_volume(state, call.caller, body, volume_id),
        body=raw,
    )


async def get_volumes(request: web.Request, call: Call) -> web.Response:
    limit, after = page_query(request)
    page = list_volumes(
        call.gateway.state,
        call.caller,
        limit=limit,
        after=after,
        tenant_id=id_query(request, "tenant_id"),
    )
    return json_response(page)


async def get_volume(request: web.Request, call: Call) -> web.Response:
    state = call.gateway.state
    volume = find_volume(state, call.caller, request.match_info["id"])
    return json_response(volume_view(volume, state.instances))


async def snapshot_volume(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, CreateVolumeSnapshot)
    volume_id, snapshot_id = request.match_info["id"], str(uuid.uuid4())
    return await commit(
        request,
        call,
        lambda state, now: commands.snapshot_volume(
            state, call.caller, volume_id, body, snapshot_id
        ),
        body=raw,
        guard=f"volume:{volume_id}",
    )


async def delete_snapshot(request: web.Request, call: Call) -> web.Response:
    volume_id, snapshot_id = request.match_info["id"], request.match_info["snapshot_id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.delete_snapshot(state, call.caller, volume_id, snapshot_id),
        guard=f"volume:{volume_id}",
    )


async def act_on_volume(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, VolumeAction)
    volume_id = request.match_info["id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.volume_action(state, call.caller, volume_id, body),
        body=raw,
        guard=f"volume:{volume_id}",
    )


async def delete_volume(request: web.Request, call: Call) -> web.Response:
    volume_id = request.match_info["id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.delete_volume(state, call.caller, volume_id),
        guard=f"volume:{volume_id}",
    )


async def attach_volume(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, AttachVolumeBody)
    return await commit(
        request,
        call,
        lambda state, now: commands.attach_volume(
            state, call.caller, request.match_info["id"], body
        ),
        body=raw,
        # Two attaches of one volume to two instances: only the first may pass the check.
        guard=f"volume:{body.volume_id}",
    )


async def detach_volume(request: web.Request, call: Call) -> web.Response:
    volume_id = request.match_info["volume_id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.detach_volume(
            state, call.caller, request.match_info["id"], volume_id
        ),
        guard=f"volume:{volume_id}",
    )


_LIST_QUERY = (
    *page_params("Volumes"),
    QueryParam("tenant_id", ID_SCHEMA, "Admins: only this tenant's volumes (its id)."),
)

ROUTES = [
    Route(
        "POST", "/v1/volumes", create_volume,
        operation_id="createVolume",
        summary="Request a volume: blank, or a copy-on-write clone of an image or a snapshot",
        errors=(403,),  # over quota
        tag="volumes", access="tenant", status=202, response=VolumeView, request=CreateVolumeBody,
    ),
    Route(
        "GET", "/v1/volumes", get_volumes,
        operation_id="listVolumes", summary="List volumes, oldest first, by pages",
        tag="volumes", access="tenant", status=200, response=VolumeList,
        query=_LIST_QUERY, errors=(400,),
    ),
    Route(
        "GET", "/v1/volumes/{id}", get_volume,
        operation_id="getVolume", summary="Show a volume, its snapshots and attachments",
        tag="volumes", access="tenant", status=200, response=VolumeView,
    ),
    Route(
        "DELETE", "/v1/volumes/{id}", delete_volume,
        operation_id="deleteVolume",
        summary="Delete a volume (refused while attached; its clones are flattened first)",
        tag="volumes", access="tenant", status=202, response=VolumeView, errors=(409,),
    ),
    Route(
        "POST", "/v1/volumes/{id}/snapshots", snapshot_volume,
        operation_id="createVolumeSnapshot", summary="Take a snapshot of a volume",
        tag="volumes", access="tenant", status=202, response=VolumeSnapshotView,
        request=CreateVolumeSnapshot, errors=(403, 409),
    ),
    Route(
        "DELETE", "/v1/volumes/{id}/snapshots/{snapshot_id}", delete_snapshot,
        operation_id="deleteVolumeSnapshot",
        summary="Delete a snapshot of a volume (refused while volumes are clones of it)",
        tag="volumes", access="tenant", status=202, response=VolumeSnapshotView, errors=(409,),
    ),
    Route(
        "POST", "/v1/volumes/{id}/actions", act_on_volume,
        operation_id="actOnVolume", summary="Extend a volume (grow only)",
        tag="volumes", access="tenant", status=202, response=VolumeView,
        request=VolumeAction, errors=(403, 409),
    ),
    Route(
        "POST", "/v1/instances/{id}/volumes", attach_volume,
        operation_id="attachVolume", summary="Attach an available volume to an instance",
        tag="volumes", access="tenant", status=202, response=VolumeView,
        request=AttachVolumeBody, errors=(409,),
    ),
    Route(
        "DELETE", "/v1/instances/{id}/volumes/{volume_id}", detach_volume,
        operation_id="detachVolume", summary="Detach a volume from an instance",
        tag="volumes", access="tenant", status=202, response=VolumeView, errors=(409,),
    ),
]  # fmt: skip
