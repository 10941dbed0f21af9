"""`GET /v1/events/stream`: the changes the caller may see, as Server-Sent Events.

Fed by the projection as it folds (`ChangeHub`), not by polling. A tenant's stream carries
only its own resources' changes, an admin's every change. The token comes in the
`Authorization` header (a browser reads the stream with fetch(), since EventSource cannot
send headers: the token is never in a URL), and is checked again at every heartbeat: a
revoked token's stream ends. A comment (`: heartbeat`) every `HEARTBEAT_SECONDS` keeps
proxies from closing an idle stream. A client too slow for `QUEUE_LIMIT` changes gets an
`overflow` event and the end of its stream. The changes waiting when the relay wakes go out in
one write.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import msgspec
import structlog
from aiohttp import web

from virga_gateway.auth import authenticate
from virga_gateway.context import Call, Gateway
from virga_gateway.problems import Problem
from virga_gateway.routing import Route
from virga_gateway.stream.hub import Subscriber
from virga_gateway.stream.views import Change

log = structlog.get_logger(__name__)

HEARTBEAT_SECONDS = 15.0
RETRY_MILLISECONDS = 2000
"""What the stream advises a client to wait before it reconnects."""
_ENCODER = msgspec.json.Encoder()


def sse_change(change: Change) -> bytes:
    data = _ENCODER.encode(change)
    return b"id: " + change.event_id.encode() + b"\nevent: change\ndata: " + data + b"\n\n"


async def stream_events(request: web.Request, call: Call) -> web.StreamResponse:
    gateway = call.gateway
    hub = gateway.runner.changes
    subscriber = hub.subscribe(call.caller.listed_tenant)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    try:
        await response.prepare(request)
        await response.write(f"retry: {RETRY_MILLISECONDS}\n: connected\n\n".encode())
        log.info("event_stream_opened", tenant_id=subscriber.tenant_id)
        await _relay(gateway, request.headers.get("Authorization"), response, subscriber)
    except ConnectionResetError:
        pass  # the client went; a cancellation (the gateway stopping) propagates
    finally:
        hub.unsubscribe(subscriber)
        log.info("event_stream_closed", dropped=subscriber.dropped)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


async def _relay(
    gateway: Gateway, authorization: str | None, response: web.StreamResponse, sub: Subscriber
) -> None:
    while True:
        try:
            change = await asyncio.wait_for(sub.queue.get(), HEARTBEAT_SECONDS)
        except TimeoutError:
            try:
                authenticate(gateway.state, authorization, datetime.now(UTC))
            except Problem:
                await response.write(b"event: unauthorized\ndata: {}\n\n")
                return
            await response.write(b": heartbeat\n\n")
            continue
        chunk, ended = drained(change, sub.queue)
        if chunk:
            await response.write(chunk)
        if ended:
            await response.write(b"event: overflow\ndata: {}\n\n")
            return


def drained(first: Change | None, queue: asyncio.Queue[Change | None]) -> tuple[bytes, bool]:
    """`first` and every change already waiting behind it, as one write; and whether the end
    of the stream (None: the client was dropped) came. A burst (200 instances booting) is
    then one write and one wake-up of the relay, not one per change."""
    parts: list[bytes] = []
    change = first
    while change is not None:
        parts.append(sse_change(change))
        if queue.empty():
            return b"".join(parts), False
        change = queue.get_nowait()
    return b"".join(parts), True


ROUTES = [
    Route(
        "GET", "/v1/events/stream", stream_events,
        operation_id="streamEvents",
        summary="Live changes the caller may see, as Server-Sent Events (`event: change`)",
        tag="events", access="tenant", status=200, response=Change,
        response_content_type="text/event-stream",
    ),
]  # fmt: skip
