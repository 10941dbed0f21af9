"""Small helpers the route modules share: JSON answers and query-string parameters."""

from __future__ import annotations

import msgspec
from aiohttp import web

from virga_gateway.problems import invalid


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
