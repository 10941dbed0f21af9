"""The OpenAPI document: generated from the router's own table, valid, and complete."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from openapi_spec_validator import validate
from tests.unit.gateway.app import unstarted

from virga_gateway.instances.bodies import CreateInstance
from virga_gateway.openapi import openapi_document
from virga_gateway.routes import ROUTES
from virga_gateway.web import ASSET_PATH, INDEX_PATH


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document(ROUTES)


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)  # raises on any violation
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearer"]["description"],
    }


def test_every_route_of_the_app_is_documented_and_nothing_else(document: dict[str, Any]) -> None:
    _, app = unstarted()
    routed = {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    web = {(INDEX_PATH, "get"), (ASSET_PATH, "get")}  # the web console's files, not the API
    assert web <= routed
    assert routed - web == documented
    assert ("/v1/instances/{id}/actions", "post") in documented


def test_operations_document_their_auth_and_every_error_status(document: dict[str, Any]) -> None:
    problem = {"$ref": "#/components/schemas/ProblemDetails"}
    for route in ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        statuses = set(operation["responses"])
        assert str(route.status) in statuses
        assert "500" in statuses
        if route.access == "public":
            assert operation["security"] == []
            assert "401" not in statuses
        else:
            assert "security" not in operation  # the document's default: bearer
            assert {"401", "503"} <= statuses
        # Admins only, or an operation that refuses tenants some of its forms (public images).
        assert ("403" in statuses) is (route.access == "admin" or 403 in route.errors)
        if route.request is not None:
            assert {"400", "413", "415", "422"} <= statuses
        if route.method == "POST":
            names = [p.get("$ref", "").rsplit("/", 1)[-1] for p in operation["parameters"]]
            assert "IdempotencyKey" in names
        for status in statuses - {str(route.status), *map(str, route.also)}:
            content = operation["responses"][status]["content"]
            assert content == {"application/problem+json": {"schema": problem}}


def test_routes_with_their_own_errors_document_them(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert "409" in paths["/v1/instances/{id}/actions"]["post"]["responses"]
    assert "409" in paths["/v1/flavors"]["post"]["responses"]
    assert "400" in paths["/v1/instances"]["get"]["responses"]
    assert "404" in paths["/v1/instances/{id}"]["get"]["responses"]
    assert "404" not in paths["/v1/instances"]["post"]["responses"]


def test_schemas_are_the_handlers_own_types(document: dict[str, Any]) -> None:
    _, components = msgspec.json.schema_components(
        [CreateInstance], ref_template="#/components/schemas/{name}"
    )
    assert document["components"]["schemas"]["CreateInstance"] == components["CreateInstance"]
    name = document["components"]["schemas"]["CreateInstance"]["properties"]["name"]
    assert name["maxLength"] == 63
    body = document["paths"]["/v1/instances"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateInstance"
    }
    events = document["paths"]["/v1/instances/{id}/events"]["get"]["responses"]["200"]
    assert events["content"]["application/json"]["schema"]["type"] == "array"


def test_an_image_upload_documents_its_body_as_bytes(document: dict[str, Any]) -> None:
    body = document["paths"]["/v1/images"]["post"]["requestBody"]
    assert body == {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }


def test_the_description_names_every_resource_family(document: dict[str, Any]) -> None:
    description = document["info"]["description"]
    for tag in document["tags"]:
        assert tag["name"].replace("-", " ") in description, tag


def test_required_query_parameters_are_marked_so_and_documented_statuses_hold(
    document: dict[str, Any],
) -> None:
    upload = document["paths"]["/v1/images"]["post"]
    [name] = [p for p in upload["parameters"] if p.get("name") == "name"]
    assert name["required"] is True
    assert {"202", "400"} <= set(upload["responses"])  # a retried upload; a bad query
    assert "409" in document["paths"]["/v1/instances"]["post"]["responses"]
    assert "409" in document["paths"]["/v1/server-groups/{id}"]["delete"]["responses"]
