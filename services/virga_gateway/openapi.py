"""The OpenAPI 3.1 document, generated from the route table and its msgspec types."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import msgspec

from virga_gateway.idempotency import HEADER as IDEMPOTENCY_HEADER
from virga_gateway.idempotency import MAX_KEY_LENGTH
from virga_gateway.middleware import PROJECTION_AGE_HEADER, READS, REQUEST_ID_HEADER
from virga_gateway.problems import PROBLEM_CONTENT_TYPE, ProblemDetails
from virga_gateway.routing import Route

_REF = "#/components/schemas/{name}"

_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}}},
    405: {"Allow": {"schema": {"type": "string"}}},
    503: {"Retry-After": {"schema": {"type": "integer"}}},
}

_READ_HEADERS: dict[str, Any] = {
    PROJECTION_AGE_HEADER: {
        "description": "Whole seconds since the gateway last heard from the event log: the"
        " answer holds what the log had committed by then. 0 or 1 while the log is reachable;"
        " it grows while the log is away, and reads go on being answered.",
        "schema": {"type": "integer", "minimum": 0},
    }
}

_COMMON_PARAMETERS = {
    "RequestId": {
        "name": REQUEST_ID_HEADER,
        "in": "header",
        "required": False,
        "description": "Your id for the request (else one is made): echoed back. The"
        " correlation_id of every event the request causes is it namespaced under the caller"
        " (`tenant:<tenant id>:<your id>`, `admin:<your id>`), returned in X-Correlation-Id, so"
        " no two tenants ever share one. Kept when it is 1-128 letters, digits, '.', '_', ':'"
        " or '-'; any other value is replaced, not refused (proxies set their own).",
        "schema": {"type": "string"},
    },
    "IdempotencyKey": {
        "name": IDEMPOTENCY_HEADER,
        "in": "header",
        "required": False,
        "description": "Retrying with the same key and body replays the first response and"
        " creates nothing; the same key with another body is refused (422). Keys last 24 h."
        " A write answered 503 may still take effect: a retry with the same key is always"
        " safe.",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    },
}


def openapi_document(routes: list[Route], *, version: str = "0.1.0") -> dict[str, Any]:
    types = _types(routes)
    refs, schemas = msgspec.json.schema_components(types, ref_template=_REF)
    schema_of = dict(zip(map(_type_key, types), refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schema_of)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Virga API",
            "version": version,
            "description": _description(routes),
        },
        "tags": [{"name": tag} for tag in dict.fromkeys(route.tag for route in routes)],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": _COMMON_PARAMETERS,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token issued by POST /v1/tenants/{id}/tokens, or the"
                    " admin token the gateway was started with.",
                }
            },
        },
    }


def _description(routes: list[Route]) -> str:
    """Every resource family (tag) of the API, from the route table itself."""
    families = [tag.replace("-", " ") for tag in dict.fromkeys(r.tag for r in routes)]
    listed = ", ".join(families[:-1]) + f" and {families[-1]}" if len(families) > 1 else ""
    return (
        f"The control plane of a Virga cloud: {listed or ''.join(families)}. Resources are"
        " named by id (flavors and keypairs by name). Errors are RFC 9457 problem details; a"
        " bad query parameter is a 400 naming it, a bad body field a 422 naming it."
    )


def _types(routes: list[Route]) -> list[Any]:
    found: dict[str, Any] = {_type_key(ProblemDetails): ProblemDetails}
    for route in routes:
        for kind in (route.request, route.response):
            if kind is not None:
                found.setdefault(_type_key(kind), kind)
    return list(found.values())


def _type_key(kind: Any) -> str:
    return repr(kind)


def _operation(route: Route, schema_of: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": _parameters(route),
        "responses": _responses(route, schema_of),
    }
    if route.access == "public":
        operation["security"] = []
    elif route.access == "admin":
        operation["description"] = "Admin tokens only."
    if route.request is not None:
        operation["requestBody"] = {
            "required": not route.request_optional,
            "content": {"application/json": {"schema": schema_of[_type_key(route.request)]}},
        }
    elif route.raw_body is not None:
        binary = {"type": "string", "format": "binary"}
        operation["requestBody"] = {
            "required": True,
            "content": {route.raw_body: {"schema": binary}},
        }
    return operation


def _parameters(route: Route) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in route.path_params
    ]
    parameters += [
        {
            "name": q.name,
            "in": "query",
            "required": q.required,
            "schema": q.schema,
            "description": q.description,
        }
        for q in route.query
    ]
    parameters.append({"$ref": "#/components/parameters/RequestId"})
    if route.method == "POST":
        parameters.append({"$ref": "#/components/parameters/IdempotencyKey"})
    return parameters


def _responses(route: Route, schema_of: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in (route.status, *route.also):
        answer: dict[str, Any] = {"description": HTTPStatus(status).phrase}
        if route.response is not None:
            schema = schema_of[_type_key(route.response)]
            answer["content"] = {route.response_content_type: {"schema": schema}}
        if route.method in READS:
            answer["headers"] = _READ_HEADERS
        responses[str(status)] = answer
    problem = {"schema": schema_of[_type_key(ProblemDetails)]}
    for status in route.error_statuses():
        answer = {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_CONTENT_TYPE: problem},
        }
        if status in _ERROR_HEADERS:
            answer["headers"] = _ERROR_HEADERS[status]
        responses[str(status)] = answer
    return responses
