"""Every request's frame: its correlation id, its log line, and problem+json for every error."""

from __future__ import annotations

import re
import time
import uuid

import msgspec
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from virga_gateway.context import CLIENT_REQUEST_ID, CORRELATION_ID, GATEWAY
from virga_gateway.problems import PROBLEM_CONTENT_TYPE, Problem, internal_error

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
CORRELATION_ID_HEADER = "X-Correlation-Id"
PROJECTION_AGE_HEADER = "Virga-Projection-Age"
"""On every read: whole seconds since the gateway last heard from the event log. The answer
was read from a projection holding what the log had committed by then; 0 or 1 while it is
reachable, growing while it is away (docs/api.md, "When the event log is away")."""
READS = frozenset({"GET", "HEAD"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def client_request_id(request: web.Request) -> str | None:
    """The client's X-Request-Id when it is a sane token, else None."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _REQUEST_ID.match(given) else None


def correlation_id_of(request: web.Request) -> str:
    """The client's X-Request-Id when it is a sane token, else a new uuid.

    This is the correlation id until the caller is known; `endpoint` then namespaces a
    client's id under the caller (`virga_gateway.auth.correlation_id_for`).
    """
    return client_request_id(request) or str(uuid.uuid4())


@web.middleware
async def request_frame(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind the correlation id, turn any failure into a problem, log one line per request."""
    request_id = correlation_id_of(request)
    request[CLIENT_REQUEST_ID] = client_request_id(request) or ""
    request[CORRELATION_ID] = request_id
    started = time.perf_counter()
    with structlog.contextvars.bound_contextvars(correlation_id=request_id):
        try:
            response = await handler(request)
        except Problem as problem:
            response = problem_response(request, problem, request[CORRELATION_ID])
        except web.HTTPException as exc:
            # aiohttp's own refusals: no route (404), wrong method (405), body too large (413).
            response = problem_response(request, _from_http(request, exc), request[CORRELATION_ID])
        except Exception:
            log.exception("request_failed", method=request.method, path=request.path)
            response = problem_response(request, internal_error(), request[CORRELATION_ID])
        if request.method in READS:
            age = request.app[GATEWAY].runner.watch.age()
            response.headers[PROJECTION_AGE_HEADER] = str(int(age))
        response.headers[REQUEST_ID_HEADER] = request_id
        response.headers[CORRELATION_ID_HEADER] = request[CORRELATION_ID]
        log.info(
            "request",
            correlation_id=request[CORRELATION_ID],
            request_id=request_id,
            method=request.method,
            path=request.path,
            status=response.status,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response


def problem_response(request: web.Request, problem: Problem, correlation_id: str) -> web.Response:
    details = problem.details(instance=request.path, correlation_id=correlation_id)
    return web.Response(
        status=problem.status,
        body=msgspec.json.encode(details),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )


def _from_http(request: web.Request, exc: web.HTTPException) -> Problem:
    headers = {}
    if exc.status == 404:
        detail = f"no route matches {request.path}"
    elif exc.status == 405:
        allowed = exc.headers.get("Allow", "")
        headers["Allow"] = allowed
        detail = f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
    elif exc.status == 413:
        limit = request.app[GATEWAY].config.max_body_bytes
        detail = f"the request body is larger than the limit of {limit} bytes"
    else:
        detail = exc.text or exc.reason
    slug = exc.reason.lower().replace(" ", "-")
    return Problem(exc.status, slug, exc.reason, detail, headers=headers)
