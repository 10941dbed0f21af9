"""One rule for names: every argument that takes a resource takes its id or its unique name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from tests.unit.cli.fake_api import fake_api, run

from virga_cli import errors

UUID = "0b6f2c1e-5d3a-4f7e-9c2b-1a2b3c4d5e6f"

LISTINGS: dict[str, list[dict[str, Any]]] = {
    "/v1/instances": [{"id": "i-1", "name": "web-1"}, {"id": "i-2", "name": "db"}],
    "/v1/images": [{"id": "img-1", "name": "debian"}],
    "/v1/networks": [{"id": "net-1", "name": "lan"}],
    "/v1/ports": [{"id": "p-1", "name": "front"}],
    "/v1/volumes": [
        {"id": "v-1", "name": "data", "snapshots": [{"id": "s-1", "name": "nightly"}]},
        {"id": "v-2", "name": "twin"},
        {"id": "v-3", "name": "twin"},
    ],
    "/v1/security-groups": [{"id": "sg-1", "name": "ssh"}, {"id": "sg-2", "name": "web"}],
    "/v1/server-groups": [{"id": "g-1", "name": "spread"}],
}


def listing(items: list[dict[str, Any]]) -> Any:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"items": items, "next": None})

    return answer


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    answer = orjson.loads(body) if body else {}
    return web.json_response(
        {"id": request.match_info.get("id", "new"), "name": "x", "status": "ok", **answer}
    )


async def volume(request: web.Request) -> web.Response:
    found = [v for v in LISTINGS["/v1/volumes"] if v["id"] == request.match_info["id"]]
    return web.json_response(found[0])


async def no_events(request: web.Request) -> web.Response:
    return web.json_response([])


ROUTES = {("GET", path): listing(items) for path, items in LISTINGS.items()} | {
    ("GET", "/v1/volumes/{id}"): volume,
    ("GET", "/v1/instances/{id}/events"): no_events,
    ("GET", "/v1/{kind}/{id}"): echo,
    ("DELETE", "/v1/{kind}/{id}"): echo,
    ("POST", "/v1/{kind}"): echo,
    ("POST", "/v1/{kind}/{id}/{what}"): echo,
    ("DELETE", "/v1/volumes/{id}/snapshots/{snap}"): echo,
    ("DELETE", "/v1/instances/{id}/volumes/{vol}"): echo,
}

CASES = [
    (["instance", "show", "web-1"], ("GET", "/v1/instances/i-1")),
    (["instance", "stop", "web-1"], ("POST", "/v1/instances/i-1/actions")),
    (["instance", "delete", "db"], ("DELETE", "/v1/instances/i-2")),
    (["events", "tail", "web-1", "--no-follow"], ("GET", "/v1/instances/i-1/events")),
    (["security-group", "show", "ssh"], ("GET", "/v1/security-groups/sg-1")),
    (["security-group", "delete", "web"], ("DELETE", "/v1/security-groups/sg-2")),
    (["port", "show", "front"], ("GET", "/v1/ports/p-1")),
    (["port", "delete", "front"], ("DELETE", "/v1/ports/p-1")),
    (["port", "list", "--network", "lan"], ("GET", "/v1/ports")),
    (["volume", "show", "data"], ("GET", "/v1/volumes/v-1")),
    (["volume", "extend", "data", "--size", "3"], ("POST", "/v1/volumes/v-1/actions")),
    (["volume", "attach", "data", "web-1"], ("POST", "/v1/instances/i-1/volumes")),
    (["volume", "detach", "data", "web-1"], ("DELETE", "/v1/instances/i-1/volumes/v-1")),
    (["volume", "snapshot-delete", "data", "nightly"], ("DELETE", "/v1/volumes/v-1/snapshots/s-1")),
    (["image", "show", "debian"], ("GET", "/v1/images/img-1")),
    (["network", "show", "lan"], ("GET", "/v1/networks/net-1")),
    (["server-group", "show", "spread"], ("GET", "/v1/server-groups/g-1")),
    (["server-group", "delete", "spread"], ("DELETE", "/v1/server-groups/g-1")),
]


@pytest.mark.parametrize(("args", "reached"), CASES, ids=lambda v: " ".join(v[:3]))
async def test_every_resource_argument_takes_a_name(
    tmp_path: Path, args: list[str], reached: tuple[str, str]
) -> None:
    async with fake_api(ROUTES) as api:
        result = await run(["--api", api.url, *args], tmp_path)
        last = api.requests[-1]
    assert result.exit_code == 0, result.output
    assert (last.method, last.path) == reached


async def test_names_in_bodies_and_filters_become_ids(tmp_path: Path) -> None:
    async with fake_api(ROUTES) as api:
        commands = [
            ["port", "create", "--network", "lan", "--security-group", "ssh",
             "--security-group", "sg-2"],
            ["volume", "create", "copy", "--size", "1", "--snapshot", "nightly"],
            ["instance", "create", "w", "--flavor", "m1.tiny", "--image", "debian",
             "--network", "lan", "--server-group", "spread"],
            ["volume", "attach", "data", "web-1"],
            ["port", "list", "--network", "lan"],
            ["server-group", "create", "db", "--policy", "anti-affinity", "--scope", "rack"],
        ]  # fmt: skip
        for args in commands:
            result = await run(["--api", api.url, "--json", *args], tmp_path)
            assert result.exit_code == 0, (args, result.output)
        posts = [orjson.loads(r.body) for r in api.requests if r.method == "POST"]
        filtered = [r.query for r in api.requests if (r.method, r.path) == ("GET", "/v1/ports")]
    assert posts[0] == {"network_id": "net-1", "security_groups": ["sg-1", "sg-2"]}
    assert posts[1]["snapshot"] == "s-1"
    assert {k: posts[2][k] for k in ("image", "network_id", "server_group")} == {
        "image": "img-1",
        "network_id": "net-1",
        "server_group": "g-1",
    }
    assert posts[3] == {"volume_id": "v-1"}
    assert filtered == [{"network_id": "net-1"}]
    assert posts[4] == {"name": "db", "policy": "anti-affinity", "scope": "rack"}


async def test_an_id_is_used_as_it_is_without_a_listing(tmp_path: Path) -> None:
    async with fake_api(ROUTES) as api:
        result = await run(["--api", api.url, "instance", "show", UUID], tmp_path)
        seen = [(r.method, r.path) for r in api.requests]
    assert result.exit_code == 0, result.output
    assert seen == [("GET", f"/v1/instances/{UUID}")]


@pytest.mark.parametrize(
    "args",
    [
        ["instance", "show", "nope"],
        ["security-group", "delete", "nope"],
        ["port", "create", "--network", "lan", "--security-group", "nope"],
        ["volume", "create", "v", "--size", "1", "--snapshot", "nope"],
        ["port", "list", "--network", "nope"],
    ],
    ids=lambda v: " ".join(v[:2]),
)
async def test_a_name_nothing_has_is_one_error_before_any_write(
    tmp_path: Path, args: list[str]
) -> None:
    async with fake_api(ROUTES) as api:
        result = await run(["--api", api.url, *args], tmp_path)
        methods = {r.method for r in api.requests}
    assert result.exit_code == errors.API_ERROR
    assert "has the id or name 'nope'" in result.stderr
    assert methods == {"GET"}


async def test_a_shared_name_is_the_same_usage_error_for_every_kind(tmp_path: Path) -> None:
    async with fake_api(ROUTES) as api:
        result = await run(["--api", api.url, "volume", "delete", "twin"], tmp_path)
        methods = {r.method for r in api.requests}
    assert result.exit_code == errors.USAGE
    assert "several volumes are named 'twin' (v-2, v-3): give an id" in result.stderr
    assert methods == {"GET"}


async def test_json_after_the_command_as_well_as_before_it(tmp_path: Path) -> None:
    async with fake_api(ROUTES) as api:
        after = await run(["--api", api.url, "network", "list", "--json"], tmp_path)
        before = await run(["--api", api.url, "--json", "network", "list"], tmp_path)
        table = await run(["--api", api.url, "network", "list"], tmp_path)
    assert after.exit_code == before.exit_code == 0, after.output
    assert orjson.loads(after.stdout) == orjson.loads(before.stdout)
    assert orjson.loads(after.stdout)["items"][0]["id"] == "net-1"
    assert table.stdout.split()[0] == "ID"
