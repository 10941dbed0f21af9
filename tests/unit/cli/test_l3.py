"""`virga external-network|router|floating-ip`: what the commands send and show."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from tests.unit.cli.fake_api import fake_api, run

from virga_cli import errors

EXT = "11111111-1111-4111-8111-111111111111"
NET = "22222222-2222-4222-8222-222222222222"
PORT = "33333333-3333-4333-8333-333333333333"
FIP = "44444444-4444-4444-8444-444444444444"
ROUTER = "55555555-5555-4555-8555-555555555555"

FLOATING_IP = {
    "id": FIP,
    "ip": "203.0.113.10",
    "status": "DOWN",
    "external_network_id": EXT,
    "port_id": None,
    "fixed_ip": None,
}
ROUTER_VIEW = {
    "id": ROUTER,
    "name": "edge",
    "status": "ACTIVE",
    "external_network_id": EXT,
    "external_ip": "203.0.113.11",
    "interfaces": [],
}


def listing(*items: Mapping[str, object]) -> web.Response:
    return web.json_response({"items": list(items), "next": None})


async def test_names_and_addresses_become_ids_in_the_bodies(tmp_path: Path) -> None:
    async def externals(request: web.Request) -> web.Response:
        return listing({"id": EXT, "name": "public"})

    async def networks(request: web.Request) -> web.Response:
        return listing({"id": NET, "name": "lan"})

    async def ports(request: web.Request) -> web.Response:
        return listing({"id": PORT, "name": "web-port"})

    async def fips(request: web.Request) -> web.Response:
        return listing(FLOATING_IP)

    async def routers(request: web.Request) -> web.Response:
        return listing(ROUTER_VIEW)

    async def fip(request: web.Request) -> web.Response:
        return web.json_response(FLOATING_IP, status=202)

    async def router(request: web.Request) -> web.Response:
        return web.json_response(ROUTER_VIEW, status=202)

    routes = {
        ("GET", "/v1/external-networks"): externals,
        ("GET", "/v1/networks"): networks,
        ("GET", "/v1/ports"): ports,
        ("GET", "/v1/floating-ips"): fips,
        ("GET", "/v1/routers"): routers,
        ("POST", "/v1/floating-ips"): fip,
        ("PUT", f"/v1/floating-ips/{FIP}"): fip,
        ("DELETE", f"/v1/floating-ips/{FIP}"): fip,
        ("POST", "/v1/routers"): router,
        ("POST", f"/v1/routers/{ROUTER}/interfaces"): router,
        ("DELETE", f"/v1/routers/{ROUTER}/interfaces/{NET}"): router,
    }
    commands = [
        ["floating-ip", "create", "--external-network", "public"],
        ["floating-ip", "associate", "203.0.113.10", "web-port"],
        ["floating-ip", "dissociate", FIP],
        ["floating-ip", "delete", "203.0.113.10"],
        ["router", "create", "edge", "--external-network", "public"],
        ["router", "add-interface", "edge", "lan"],
        ["router", "remove-interface", "edge", "lan"],
    ]
    async with fake_api(routes) as api:
        for command in commands:
            result = await run(["--api", api.url, *command], tmp_path)
            assert result.exit_code == 0, (command, result.output)
        writes = [(r.method, r.path, r.body) for r in api.requests if r.method != "GET"]
    assert [(method, path) for method, path, _ in writes] == [
        ("POST", "/v1/floating-ips"),
        ("PUT", f"/v1/floating-ips/{FIP}"),
        ("PUT", f"/v1/floating-ips/{FIP}"),
        ("DELETE", f"/v1/floating-ips/{FIP}"),
        ("POST", "/v1/routers"),
        ("POST", f"/v1/routers/{ROUTER}/interfaces"),
        ("DELETE", f"/v1/routers/{ROUTER}/interfaces/{NET}"),
    ]
    bodies = [orjson.loads(body) if body else None for _, _, body in writes]
    assert bodies == [
        {"external_network_id": EXT},
        {"port_id": PORT},
        {"port_id": None},
        None,
        {"name": "edge", "external_network_id": EXT},
        {"network_id": NET},
        None,
    ]


async def test_an_external_network_is_created_with_its_pools_and_interface(
    tmp_path: Path,
) -> None:
    async def created(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"id": EXT, "status": "BUILDING", **body}, status=202)

    async with fake_api({("POST", "/v1/external-networks"): created}) as api:
        result = await run(
            [
                *("--api", api.url, "external-network", "create", "public"),
                *("--cidr", "203.0.113.0/24", "--gateway", "203.0.113.1"),
                *("--pool", "203.0.113.10-203.0.113.99", "--interface", "br-ex"),
            ],
            tmp_path,
        )
        body = orjson.loads(api.requests[0].body)
    assert result.exit_code == 0, result.output
    assert body == {
        "name": "public",
        "cidr": "203.0.113.0/24",
        "gateway_ip": "203.0.113.1",
        "host_interface": "br-ex",
        "allocation_pools": [{"start": "203.0.113.10", "end": "203.0.113.99"}],
    }
    assert "br-ex" in result.stdout


@pytest.mark.parametrize(
    ("command", "path"),
    [
        (["external-network", "list"], "/v1/external-networks"),
        (["router", "list"], "/v1/routers"),
        (["floating-ip", "list"], "/v1/floating-ips"),
    ],
)
async def test_every_list_command_follows_every_page(
    tmp_path: Path, command: list[str], path: str
) -> None:
    async def page(request: web.Request) -> web.Response:
        if request.query.get("cursor") == "c2":
            return web.json_response({"items": [{"id": "x-3", "name": "c"}], "next": None})
        items = [{"id": "x-1", "name": "a"}, {"id": "x-2", "name": "b"}]
        return web.json_response({"items": items, "next": "c2"})

    async with fake_api({("GET", path): page}) as api:
        result = await run(["--api", api.url, "--json", *command], tmp_path)
    assert result.exit_code == 0, result.output
    assert [i["id"] for i in orjson.loads(result.stdout)["items"]] == ["x-1", "x-2", "x-3"]


async def test_port_list_finds_an_instances_ports(tmp_path: Path) -> None:
    instance = "66666666-6666-4666-8666-666666666666"

    async def ports(request: web.Request) -> web.Response:
        assert request.query["instance_id"] == instance
        return listing({"id": PORT, "name": "web-port", "floating_ips": [{"id": FIP,
                        "ip": "203.0.113.10"}]})  # fmt: skip

    async with fake_api({("GET", "/v1/ports"): ports}) as api:
        result = await run(["--api", api.url, "port", "list", "--instance", instance], tmp_path)
    assert result.exit_code == 0, result.output
    assert "203.0.113.10" in result.stdout


async def test_associate_wait_returns_once_the_host_confirmed_and_fails_on_a_refusal(
    tmp_path: Path,
) -> None:
    views = [
        {**FLOATING_IP, "status": "ACTIVE", "port_id": "another-port"},  # the former port yet
        {**FLOATING_IP, "port_id": PORT, "fixed_ip": "10.0.0.5"},  # accepted, not plumbed
        {**FLOATING_IP, "status": "ACTIVE", "port_id": PORT, "fixed_ip": "10.0.0.5"},
    ]

    async def fips(request: web.Request) -> web.Response:
        return listing(FLOATING_IP)

    async def ports(request: web.Request) -> web.Response:
        return listing({"id": PORT, "name": "web-port"})

    async def put(request: web.Request) -> web.Response:
        return web.json_response(FLOATING_IP, status=202)

    async def get(request: web.Request) -> web.Response:
        return web.json_response(views.pop(0) if len(views) > 1 else views[0])

    routes = {
        ("GET", "/v1/floating-ips"): fips,
        ("GET", "/v1/ports"): ports,
        ("PUT", f"/v1/floating-ips/{FIP}"): put,
        ("GET", f"/v1/floating-ips/{FIP}"): get,
    }
    command = ["--json", "floating-ip", "associate", "203.0.113.10", "web-port", "--wait"]
    async with fake_api(routes) as api:
        result = await run(["--api", api.url, *command], tmp_path)
        assert result.exit_code == 0, result.output
        assert orjson.loads(result.output)["status"] == "ACTIVE"
        gets = [
            r for r in api.requests if r.path == f"/v1/floating-ips/{FIP}" and r.method == "GET"
        ]
        assert len(gets) == 3
        # Refused (the port took another floating IP meanwhile): the fault, exit FAILED.
        views[:] = [{**FLOATING_IP, "fault": "port already has floating IP f-2"}]
        refused = await run(["--api", api.url, *command], tmp_path)
        assert refused.exit_code == errors.FAILED
        assert "port already has floating IP f-2" in refused.output
        # Never confirmed: TIMEOUT.
        views[:] = [{**FLOATING_IP, "port_id": PORT}]
        late = await run(["--api", api.url, *command, "--timeout", "0.5"], tmp_path)
        assert late.exit_code == errors.TIMEOUT
        assert "still DOWN" in late.output
