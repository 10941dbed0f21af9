"""Small helpers the route modules share: JSON answers and query-string parameters."""

from __future__ import annotations

import msgspec
from aiohttp import web

from virga_gateway.cursor import BadCursor, decode_cursor
from virga_gateway.model import OrderKey
from virga_gateway.problems import invalid
from virga_gateway.routing import QueryParam

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
