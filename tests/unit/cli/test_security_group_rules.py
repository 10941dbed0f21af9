"""What `virga security-group rule-add|rule-delete`, `port set` and `instance create
--security-group` send, and what they show."""

from __future__ import annotations

from pathlib import Path

import orjson
from aiohttp import web
from tests.unit.cli.fake_api import fake_api, problem, run

from virga_cli import errors

WEB = "6f0c1e0a-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
DB = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
PORT = "11111111-2222-4333-8444-555555555555"
GROUPS = {
    "items": [
        {"id": WEB, "name": "web", "default": False, "rules": []},
        {"id": DB, "name": "db", "default": False, "rules": []},
    ],
    "next": None,
}


async def groups(request: web.Request) -> web.Response:
    return web.json_response(GROUPS)


async def test_rule_add_sends_one_rule_and_shows_its_id(tmp_path: Path) -> None:
    async def added(request: web.Request) -> web.Response:
        rule = await request.json()
        answer = {"id": "r-1", "ethertype": "IPv4", "port_max": None, "remote_cidr": None,
                  "remote_group": None, "port_min": None, **rule}  # fmt: skip
        return web.json_response(answer, status=201)

    routes = {("GET", "/v1/security-groups"): groups,
              ("POST", f"/v1/security-groups/{WEB}/rules"): added}  # fmt: skip
    async with fake_api(routes) as api:
        http = await run(
            ["--api", api.url, "security-group", "rule-add", "web", "--protocol", "tcp",
             "--port", "80", "--remote-cidr", "0.0.0.0/0"],
            tmp_path,
        )  # fmt: skip
        peers = await run(
            ["--api", api.url, "--json", "security-group", "rule-add", WEB, "--direction",
             "ingress", "--port", "5432-5433", "--protocol", "tcp", "--remote-group", "db",
             "--ethertype", "IPv6"],
            tmp_path,
        )  # fmt: skip
        bodies = [orjson.loads(r.body) for r in api.requests if r.method == "POST"]
    assert http.exit_code == 0, http.output
    assert bodies[0] == {"direction": "ingress", "protocol": "tcp", "port_min": 80,
                         "port_max": 80, "remote_cidr": "0.0.0.0/0"}  # fmt: skip
    header, row = http.stdout.splitlines()[:2]
    assert header.split()[0] == "ID"
    assert row.split()[:4] == ["r-1", "ingress", "IPv4", "tcp"]
    assert peers.exit_code == 0, peers.output
    assert bodies[1] == {"direction": "ingress", "protocol": "tcp", "port_min": 5432,
                         "port_max": 5433, "ethertype": "IPv6", "remote_group": DB}  # fmt: skip
    assert orjson.loads(peers.stdout)["id"] == "r-1"


async def test_rule_delete_names_the_rule_and_a_missing_one_is_an_api_error(
    tmp_path: Path,
) -> None:
    async def deleted(request: web.Request) -> web.Response:
        if request.match_info["rule"] != "r-1":
            return problem(404, "Not found", f"security group rule {request.match_info['rule']}")
        return web.Response(status=204)

    routes = {("GET", "/v1/security-groups"): groups,
              ("DELETE", f"/v1/security-groups/{WEB}/rules/{{rule}}"): deleted}  # fmt: skip
    async with fake_api(routes) as api:
        done = await run(
            ["--api", api.url, "security-group", "rule-delete", "web", "r-1"], tmp_path
        )
        missing = await run(
            ["--api", api.url, "security-group", "rule-delete", WEB, "r-9"], tmp_path
        )
    assert done.exit_code == 0, done.output
    assert f"deleted rule r-1 of {WEB}" in done.stdout
    assert missing.exit_code == errors.API_ERROR
    assert "HTTP 404" in missing.stderr


async def test_port_set_and_instance_create_send_the_groups_by_id(tmp_path: Path) -> None:
    async def changed(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"id": PORT, "status": "ACTIVE", **body})

    async def created(request: web.Request) -> web.Response:
        return web.json_response({"id": "i-1", "name": "vm", "status": "BUILDING"}, status=202)

    routes = {("GET", "/v1/security-groups"): groups, ("PUT", f"/v1/ports/{PORT}"): changed,
              ("POST", "/v1/instances"): created}  # fmt: skip
    async with fake_api(routes) as api:
        port = await run(
            ["--api", api.url, "port", "set", PORT, "--security-group", "web",
             "--security-group", DB],
            tmp_path,
        )  # fmt: skip
        instance = await run(
            ["--api", api.url, "instance", "create", "vm", "--flavor", "m1.tiny",
             "--network", PORT, "--security-group", "db"],
            tmp_path,
        )  # fmt: skip
        nothing = await run(["--api", api.url, "port", "set", PORT], tmp_path)
        put = next(r for r in api.requests if r.method == "PUT")
        post = next(r for r in api.requests if r.path == "/v1/instances")
    assert port.exit_code == 0, port.output
    assert orjson.loads(put.body) == {"security_groups": [WEB, DB]}
    assert WEB in port.stdout
    assert instance.exit_code == 0, instance.output
    assert orjson.loads(post.body)["security_groups"] == [DB]
    assert nothing.exit_code == errors.USAGE
