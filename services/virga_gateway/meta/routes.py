"""The API's description and the service's health: public, no token needed."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from aiohttp import web

from virga_gateway.context import OPENAPI_DOCUMENT, Call
from virga_gateway.routing import Route


class HealthStatus(msgspec.Struct):
    """What `virga_runtime.health_routes` answers on /healthz."""

    status: Literal["ready", "rebuilding", "log-unreachable"]


async def get_openapi(request: web.Request, call: Call) -> web.Response:
    return web.Response(body=request.app[OPENAPI_DOCUMENT], content_type="application/json")


ROUTES = [
    Route(
        "GET", "/v1/openapi.json", get_openapi,
        operation_id="getOpenApi", summary="This API's OpenAPI 3.1 document", tag="meta",
        access="public", status=200, response=dict[str, Any],
    ),
    Route(
        "GET", "/healthz", None,
        operation_id="getHealth",
        summary="200 once caught up with the log and while it is reachable, 503 otherwise",
        tag="meta", access="public", status=200, response=HealthStatus, also=(503,),
    ),
    Route(
        "GET", "/metrics", None,
        operation_id="getMetrics", summary="Prometheus metrics", tag="meta",
        access="public", status=200, response=str,
        response_content_type="text/plain; version=0.0.4",
    ),
]  # fmt: skip
