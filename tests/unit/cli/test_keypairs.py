"""What `virga keypair ...` and `virga instance create --key/--user-data/--config-drive` send
and show."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
from aiohttp import web
from tests.unit.cli.fake_api import fake_api, problem, run

from virga_cli import errors

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ8VvT3kqvNYhW0TmVDm7Z6Jz0mYJbqL3dO0fqx1wXyZ me@laptop"
VIEW = {
    "name": "laptop",
    "tenant_id": "t-1",
    "fingerprint": "SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "type": "ssh-ed25519",
    "public_key": KEY,
    "created_at": "2026-12-04T23:00:00Z",
}


async def test_keypair_import_sends_the_files_key_and_shows_the_fingerprint(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "id_ed25519.pub"
    key_file.write_text(KEY + "\n")

    async def imported(request: web.Request) -> web.Response:
        return web.json_response(VIEW, status=201)

    async with fake_api({("POST", "/v1/keypairs"): imported}) as api:
        args = ["--api", api.url, "keypair", "import", "laptop", "--file", str(key_file)]
        result = await run(args, tmp_path)
        missing = await run([*args[:-1], str(tmp_path / "none.pub")], tmp_path)
        [post] = api.requests
    assert result.exit_code == 0, result.output
    assert orjson.loads(post.body) == {"name": "laptop", "public_key": KEY}
    assert VIEW["fingerprint"] in result.stdout
    assert missing.exit_code != 0  # refused by the CLI: nothing more was sent


async def test_keypair_list_show_and_delete(tmp_path: Path) -> None:
    async def listing(request: web.Request) -> web.Response:
        if request.query.get("cursor") == "c2":
            return web.json_response({"items": [{**VIEW, "name": "second"}], "next": None})
        return web.json_response({"items": [VIEW], "next": "c2"})

    async def show(request: web.Request) -> web.Response:
        if request.match_info["name"] != "laptop":
            return problem(404, "Not found", "no keypair")
        return web.json_response(VIEW)

    async def delete(request: web.Request) -> web.Response:
        return web.Response(status=204)

    routes = {
        ("GET", "/v1/keypairs"): listing,
        ("GET", "/v1/keypairs/{name}"): show,
        ("DELETE", "/v1/keypairs/{name}"): delete,
    }
    async with fake_api(routes) as api:
        base = ["--api", api.url]
        listed = await run([*base, "--json", "keypair", "list"], tmp_path)
        table = await run([*base, "keypair", "list"], tmp_path)
        shown = await run([*base, "keypair", "show", "laptop"], tmp_path)
        unknown = await run([*base, "keypair", "show", "nope"], tmp_path)
        deleted = await run([*base, "keypair", "delete", "laptop"], tmp_path)
        admin = await run([*base, "keypair", "delete", "laptop", "--tenant", "t-9"], tmp_path)
        deletes = [r for r in api.requests if r.method == "DELETE"]
    assert [k["name"] for k in orjson.loads(listed.stdout)["items"]] == ["laptop", "second"]
    assert "FINGERPRINT" in table.stdout
    assert "second" in table.stdout
    assert KEY in shown.stdout
    assert unknown.exit_code == errors.API_ERROR
    assert deleted.exit_code == 0
    assert "deleted laptop" in deleted.stdout
    assert admin.exit_code == 0, admin.output
    assert [(r.path, r.query) for r in deletes] == [
        ("/v1/keypairs/laptop", {}),
        ("/v1/keypairs/laptop", {"tenant_id": "t-9"}),
    ]


async def test_instance_create_sends_key_user_data_base64_and_config_drive(
    tmp_path: Path,
) -> None:
    script = b"#!/bin/sh\necho hello > /tmp/marker\n\x00\xff"
    user_data = tmp_path / "init.sh"
    user_data.write_bytes(script)

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        shown = {
            "id": "i-1",
            "name": body["name"],
            "status": "BUILDING",
            "flavor": {"name": body["flavor"]},
            "hostname": "web",
            "key_name": body.get("key_name"),
            "config_drive": body.get("config_drive", False),
        }
        return web.json_response(shown, status=202)

    async with fake_api({("POST", "/v1/instances"): create}) as api:
        args = ["--api", api.url, "instance", "create", "web", "--flavor", "m1.tiny"]
        result = await run(
            [*args, "--key", "laptop", "--user-data", str(user_data), "--config-drive"], tmp_path
        )
        plain = await run(args, tmp_path)
        first, second = (orjson.loads(r.body) for r in api.requests)
    assert result.exit_code == 0, result.output
    assert first["key_name"] == "laptop"
    assert base64.b64decode(first["user_data"], validate=True) == script
    assert first["config_drive"] is True
    assert "hostname" in result.stdout
    assert "laptop" in result.stdout
    assert plain.exit_code == 0, plain.output
    assert second == {"name": "web", "flavor": "m1.tiny"}
