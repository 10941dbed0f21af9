"""Images: upload (streamed on to the storage service), read, list, delete.

The gateway never talks to Ceph. An upload is recorded first (`ImageImportRequested`), then
its body is streamed, unbuffered, to the storage service's internal endpoint, which writes
the pool and appends the outcome; the gateway answers once its projection has that outcome.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Literal

import aiohttp
import msgspec
import structlog
from aiohttp import web

from virga_events.catalog.storage import UPLOAD_KEY_HEADER, upload_key_digest
from virga_gateway.context import Call, Gateway
from virga_gateway.images import commands
from virga_gateway.images.queries import find_image, list_images
from virga_gateway.images.views import ImageList, ImageView, image_view
from virga_gateway.problems import FieldError, Problem, forbidden, invalid, without_paths
from virga_gateway.routing import (
    QueryParam,
    Route,
    json_response,
    page_params,
    page_query,
)
from virga_gateway.validation import Name, Reference, validate_query
from virga_gateway.writes import commit

log = structlog.get_logger(__name__)

CHUNK = 1 << 20
OUTCOME_WAIT_SECONDS = 30.0
"""How long to wait, after the storage service answered, for its outcome in the projection."""


class ImageUpload(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The query of an upload (its body is the image's bytes)."""

    name: Name
    disk_format: Literal["raw", "qcow2"] = "raw"
    visibility: Literal["public", "private"] = "private"
    """public: every tenant sees it (administrators only)."""
    tenant_id: Reference | None = None
    """Required when an admin uploads a private image: the tenant that will own it."""


_FAILURES: dict[str, tuple[int, str, str]] = {
    "too_large": (413, "content-too-large", "Content too large"),
    "bad_data": (422, "validation-failed", "The request is not valid"),
    "unavailable": (503, "storage-unavailable", "Service unavailable"),
    "interrupted": (503, "upload-interrupted", "Service unavailable"),
}


def _failure(image_id: str, kind: str | None, reason: str) -> Problem:
    """The problem of a failed import; a refused body (413, 422) names the field `body`, and
    the storage service's reason is shown without its file paths."""
    status, slug, title = _FAILURES.get(kind or "", (502, "storage-failed", "Bad gateway"))
    reason = without_paths(reason)
    errors = [FieldError("body", reason)] if status in (413, 422) else []
    detail = f"image {image_id} was not imported: {reason}"
    if status in (413, 422):
        detail += " (nothing was kept: correct the file or its disk_format and upload again)"
    return Problem(status, slug, title, detail, errors=errors)


async def _stream(request: web.Request, gateway: Gateway, image_id: str, key: str) -> str | None:
    """Send the body on to the storage service with the request's upload key; what went
    wrong, or None."""
    assert gateway.config.storage_url is not None
    url = f"{gateway.config.storage_url.rstrip('/')}/internal/images/{image_id}"

    async def body() -> AsyncIterator[bytes]:
        async for chunk in request.content.iter_chunked(CHUNK):
            yield chunk

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.put(
                url,
                data=body(),
                headers={"Content-Type": "application/octet-stream", UPLOAD_KEY_HEADER: key},
            ) as answer,
        ):
            await answer.read()
            if answer.status == 200:
                return None
            return f"the storage service refused the upload (HTTP {answer.status})"
    except Exception as error:  # the storage service, or the client, went away
        log.warning("image_upload_broke_off", image_id=image_id, error=repr(error))
        return "the upload to the storage service broke off"


async def _outcome(gateway: Gateway, image_id: str, seconds: float) -> bool:
    """Whether the projection has the import's outcome within `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while gateway.state.images[image_id].status == "importing":
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def upload_image(request: web.Request, call: Call) -> web.Response:
    gateway = call.gateway
    params = validate_query(dict(request.query), ImageUpload)
    if params.visibility == "public" and not call.caller.is_admin:
        # Before a byte of the body is read: the client need not send it all to learn this.
        raise forbidden("visibility: only administrators publish public images")
    length = request.content_length
    limit = gateway.config.image_max_bytes
    if length is not None and length > limit:
        raise invalid(413, "body", f"the image is larger than the limit of {limit} bytes")
    if gateway.config.storage_url is None:
        raise Problem(
            503, "storage-unavailable", "Service unavailable", "no storage service is configured"
        )
    image_id = str(uuid.uuid4())
    key = secrets.token_urlsafe(32)  # only this request can stream the image's bytes
    recorded = await commit(
        request,
        call,
        lambda state, now: commands.request_image(
            state,
            call.caller,
            image_id=image_id,
            name=params.name,
            disk_format=params.disk_format,
            visibility=params.visibility,
            tenant_id=params.tenant_id,
            upload_key_sha256=upload_key_digest(key),
        ),
        body={**msgspec.to_builtins(params), "content_length": length},
    )
    if recorded.headers.get("Idempotent-Replayed"):
        return recorded  # the first request with this key carries (or carried) the bytes
    broke_off = await _stream(request, gateway, image_id, key)
    # The storage service may have recorded an outcome even when the stream broke off (it
    # stops reading an image over its limit); otherwise it records one when it restarts.
    if not await _outcome(gateway, image_id, OUTCOME_WAIT_SECONDS / (10 if broke_off else 1)):
        if broke_off:
            detail = f"image {image_id}: {broke_off}; it will show the failure"
            raise Problem(503, "storage-unavailable", "Service unavailable", detail)
        raise Problem(
            504,
            "outcome-pending",
            "Gateway timeout",
            f"image {image_id} was uploaded; its import is not recorded yet: GET it later",
        )
    image = gateway.state.images[image_id]
    if image.status != "available":
        raise _failure(image_id, image.import_fault_kind, image.import_fault or image.status)
    return json_response(image_view(image), status=201)


async def get_images(request: web.Request, call: Call) -> web.Response:
    limit, after = page_query(request)
    page = list_images(call.gateway.state, call.caller, limit=limit, after=after)
    return json_response(page)


async def get_image(request: web.Request, call: Call) -> web.Response:
    image = find_image(call.gateway.state, call.caller, request.match_info["id"])
    return json_response(image_view(image))


async def delete_image(request: web.Request, call: Call) -> web.Response:
    image_id = request.match_info["id"]
    return await commit(
        request,
        call,
        lambda state, now: commands.delete_image(state, call.caller, image_id),
        guard=f"image:{image_id}",
    )


_UPLOAD_QUERY = (
    QueryParam(
        "name", {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,63}$"}, "The image's name.",
        required=True,
    ),
    QueryParam(
        "disk_format", {"type": "string", "enum": ["raw", "qcow2"], "default": "raw"},
        "The body's format; qcow2 is converted to raw.",
    ),
    QueryParam(
        "visibility", {"type": "string", "enum": ["public", "private"], "default": "private"},
        "public: seen by every tenant (administrators only).",
    ),
    QueryParam("tenant_id", {"type": "string"}, "Admins: the owner of a private image."),
)  # fmt: skip

ROUTES = [
    Route(
        "POST", "/v1/images", upload_image,
        operation_id="uploadImage",
        summary="Upload an image (the body, application/octet-stream, raw or qcow2)",
        tag="images", access="tenant", status=201, response=ImageView,
        raw_body="application/octet-stream",
        query=_UPLOAD_QUERY, errors=(400, 403, 413, 422, 502, 503, 504),
        also=(202,),  # a retry with its Idempotency-Key: the first answer, `importing`
    ),
    Route(
        "GET", "/v1/images", get_images,
        operation_id="listImages", summary="List the public images and the tenant's own",
        tag="images", access="tenant", status=200, response=ImageList,
        query=page_params("Images"), errors=(400,),
    ),
    Route(
        "GET", "/v1/images/{id}", get_image,
        operation_id="getImage", summary="Show an image", tag="images",
        access="tenant", status=200, response=ImageView,
    ),
    Route(
        "DELETE", "/v1/images/{id}", delete_image,
        operation_id="deleteImage",
        summary="Delete an image (refused while volumes are clones of it)",
        tag="images", access="tenant", status=202, response=ImageView, errors=(403, 409),
    ),
]  # fmt: skip
