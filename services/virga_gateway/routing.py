"""The route table's shape: one `Route` per operation drives both the router and OpenAPI.

And the small helpers the route modules share: JSON answers and query-string parameters.
"""

from __future__ import annotations

import re
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler as AiohttpHandler

from virga_gateway.auth import authenticate, correlation_id_for
from virga_gateway.context import CLIENT_REQUEST_ID, CORRELATION_ID, GATEWAY, Call, Handler
from virga_gateway.cursor import BadCursor, OrderKey, decode_cursor
from virga_gateway.problems import invalid, not_ready

Access = Literal["public", "tenant", "admin"]
"""public: no token; tenant: any valid token (admins included); admin: admin tokens only."""


@dataclass(frozen=True, slots=True)
class QueryParam:
    name: str
    schema: dict[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    """One operation: how it is served, who may call it, and what it accepts and answers."""

    method: str
    path: str
    handler: Handler | None
    """None for routes the runtime serves (`virga_runtime.health_routes`)."""
    _: KW_ONLY
    operation_id: str
    summary: str
    tag: str
    access: Access
    status: int
    """The success status."""
    response: Any = None
    """The success body's type (a msgspec Struct, or a list of one); None: no body."""
    request: Any = None
    """The body's msgspec Struct; None: the operation takes no body."""
    request_optional: bool = False
    raw_body: str | None = None
    """Media type of a body streamed as bytes rather than parsed (an image upload)."""
    query: tuple[QueryParam, ...] = ()
    errors: tuple[int, ...] = ()
    """Error statuses particular to this operation (the common ones are derived)."""
    also: tuple[int, ...] = ()
    """Other statuses answered with the success body's type rather than a problem."""
    response_content_type: str = "application/json"

    @property
    def path_params(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]

    def error_statuses(self) -> list[int]:
        """Every error status the operation can answer, derived from its shape."""
        found = set(self.errors) | {500}
        if self.access != "public":
            found |= {401, 503}
        if self.access == "admin":
            found.add(403)
        if self.path_params:
            found.add(404)
        if self.request is not None:
            found |= {400, 413, 415, 422}
        if self.method == "POST":
            found |= {400, 422}  # Idempotency-Key: malformed / reused for another request
        return sorted(found)


def endpoint(route: Route, handler: Handler) -> AiohttpHandler:
    """`handler` behind the route's access rule: readiness, then token, then role."""

    async def serve(request: web.Request) -> web.StreamResponse:
        gateway = request.app[GATEWAY]
        principal = None
        if route.access != "public":
            # Before the projection has caught up even valid tokens may be unknown: 503, not 401.
            if not gateway.caught_up():
                raise not_ready(gateway.config.retry_after_seconds)
            principal = authenticate(
                gateway.state, request.headers.get("Authorization"), datetime.now(UTC)
            )
            request[CORRELATION_ID] = correlation_id_for(
                principal, request[CLIENT_REQUEST_ID], request[CORRELATION_ID]
            )
            if route.access == "admin":
                principal.require_admin()
        who = principal.scope if principal is not None else "anonymous"
        correlation_id = request[CORRELATION_ID]
        with structlog.contextvars.bound_contextvars(principal=who, correlation_id=correlation_id):
            return await handler(request, Call(gateway, principal, correlation_id))

    return serve


def add_routes(app: web.Application, routes: list[Route]) -> None:
    for route in routes:
        if route.handler is not None:
            app.router.add_route(route.method, route.path, endpoint(route, route.handler))


MAX_PAGE = 200
DEFAULT_PAGE = 50


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode(body), content_type="application/json"
    )


def int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(400, name, f"must be an integer from {low} to {high}") from None
    if not low <= value <= high:
        raise invalid(400, name, f"must be an integer from {low} to {high}")
    return value


_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ID_SCHEMA: dict[str, Any] = {"type": "string", "format": "uuid"}


def id_query(request: web.Request, name: str) -> str | None:
    """A filter that takes an id: None when absent, a 400 naming it when it cannot be one.

    Filters take ids, never names (a name would silently match nothing): `virga` resolves
    names to ids before it asks.
    """
    raw = request.query.get(name)
    if raw is not None and not _ID.match(raw):
        raise invalid(400, name, "must be an id (a UUID such as the API hands out), not a name")
    return raw


def page_query(request: web.Request) -> tuple[int, OrderKey | None]:
    """`limit` and the decoded `cursor` of a paged list (400 naming either when bad)."""
    limit = int_query(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    cursor = request.query.get("cursor")
    if cursor is None:
        return limit, None
    try:
        return limit, decode_cursor(cursor)
    except BadCursor as exc:
        raise invalid(400, "cursor", str(exc)) from None


def page_params(items: str) -> tuple[QueryParam, QueryParam]:
    """The OpenAPI parameters `page_query` reads, for a list of `items`."""
    return (
        QueryParam(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
            f"{items} per page.",
        ),
        QueryParam("cursor", {"type": "string"}, "The `next` of the previous page."),
    )
