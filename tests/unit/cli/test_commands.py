"""What the CLI sends and shows: login, tables and --json, --wait, uploads, bodies."""

from __future__ import annotations

import hashlib
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from tests.unit.cli.fake_api import fake_api, problem, run

from virga_cli import errors
from virga_cli.billing import next_hour

FLAVORS = {"items": [{"name": "m1.tiny", "vcpus": 1, "ram_mb": 256, "disk_gb": 1}]}


async def flavors(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != "Bearer good-token":
        return problem(401, "Unauthorized", "unknown token")
    return web.json_response(FLAVORS)


async def test_login_checks_the_token_and_saves_it_for_the_owner_only(tmp_path: Path) -> None:
    async with fake_api({("GET", "/v1/flavors"): flavors}) as api:
        refused = await run(
            ["--api", api.url, "login", "--token", "bad-token"], tmp_path, token=None
        )
        saved = tmp_path / "virga" / "credentials.json"
        assert refused.exit_code == errors.AUTH
        assert not saved.exists()
        # Prompted for, so the token stays out of the shell's history.
        logged_in = await run(
            ["--api", api.url, "login"], tmp_path, token=None, stdin="good-token\n"
        )
        assert logged_in.exit_code == 0, logged_in.output
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert orjson.loads(saved.read_bytes()) == {"token": "good-token", "api": api.url}
        # Later commands use the saved token and API without being told.
        listed = await run(["flavor", "list"], tmp_path, token=None)
        assert listed.exit_code == 0, listed.output
        assert "m1.tiny" in listed.stdout
        # VIRGA_TOKEN overrides the saved token.
        overridden = await run(["flavor", "list"], tmp_path, token="other-token")
        assert overridden.exit_code == errors.AUTH
        assert api.requests[-1].headers["Authorization"] == "Bearer other-token"


async def test_json_prints_the_api_answer_and_tables_print_its_fields(tmp_path: Path) -> None:
    async with fake_api({("GET", "/v1/flavors"): flavors}) as api:
        as_json = await run(
            ["--api", api.url, "--json", "flavor", "list"], tmp_path, token="good-token"
        )
        table = await run(["--api", api.url, "flavor", "list"], tmp_path, token="good-token")
    assert orjson.loads(as_json.stdout) == FLAVORS
    header, row = table.stdout.splitlines()
    assert header.split() == ["NAME", "VCPUS", "RAM_MB", "DISK_GB"]
    assert row.split() == ["m1.tiny", "1", "256", "1"]


async def test_listings_follow_every_page(tmp_path: Path) -> None:
    async def page(request: web.Request) -> web.Response:
        if request.query.get("cursor") == "c2":
            return web.json_response({"items": [{"id": "i-3", "name": "c"}], "next": None})
        items = [{"id": "i-1", "name": "a"}, {"id": "i-2", "name": "b"}]
        return web.json_response({"items": items, "next": "c2"})

    async with fake_api({("GET", "/v1/instances"): page}) as api:
        result = await run(["--api", api.url, "--json", "instance", "list"], tmp_path)
    assert [i["id"] for i in orjson.loads(result.stdout)["items"]] == ["i-1", "i-2", "i-3"]


@pytest.mark.parametrize(
    ("command", "path"),
    [
        (["network", "list"], "/v1/networks"),
        (["port", "list"], "/v1/ports"),
        (["security-group", "list"], "/v1/security-groups"),
        (["image", "list"], "/v1/images"),
        (["volume", "list"], "/v1/volumes"),
        (["flavor", "list"], "/v1/flavors"),
        (["tenant", "list"], "/v1/tenants"),
        (["invoice", "list"], "/v1/invoices"),
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


async def test_wait_prints_each_step_once_as_it_happens_until_running(tmp_path: Path) -> None:
    steps = [
        ("InstanceRequested", "gateway", {"name": "web"}),
        ("InstanceScheduled", "scheduler", {"host": "host-a"}),
        ("PortBound", "network", {"host": "host-a", "tap": "vt-1"}),
        ("InstanceStarted", "compute", {"host": "host-a"}),
    ]
    polls = {"n": 0}

    def events_so_far() -> list[dict[str, Any]]:
        return [
            {
                "event_id": f"e-{i}",
                "type": kind,
                "producer": producer,
                "occurred_at": f"2026-11-23T21:00:0{i}Z",
                "payload": payload,
            }
            for i, (kind, producer, payload) in enumerate(steps[: polls["n"]])
        ]

    async def create(request: web.Request) -> web.Response:
        return web.json_response({"id": "i-1", "name": "web", "status": "BUILDING"}, status=202)

    async def show(request: web.Request) -> web.Response:
        polls["n"] += 1  # one more step happens between polls
        running = polls["n"] >= len(steps)
        status = "RUNNING" if running else "BUILDING"
        return web.json_response({"id": "i-1", "name": "web", "status": status, "host": "host-a"})

    async def history(request: web.Request) -> web.Response:
        return web.json_response(events_so_far())

    async def images(request: web.Request) -> web.Response:
        return web.json_response({"items": [{"id": "img-1", "name": "tiny"}]})

    async def networks(request: web.Request) -> web.Response:
        return web.json_response({"items": [{"id": "net-1", "name": "lan"}]})

    routes = {
        ("POST", "/v1/instances"): create,
        ("GET", "/v1/instances/i-1"): show,
        ("GET", "/v1/instances/i-1/events"): history,
        ("GET", "/v1/images"): images,
        ("GET", "/v1/networks"): networks,
    }
    async with fake_api(routes) as api:
        args = ["--api", api.url, "instance", "create", "web", "--flavor", "m1.tiny"]
        # The image by its name, the network by its id: both reach the API as ids.
        result = await run([*args, "--image", "tiny", "--network", "net-1", "--wait"], tmp_path)
        [post] = [r for r in api.requests if r.method == "POST"]
        body = orjson.loads(post.body)
    assert result.exit_code == 0, result.output
    assert body == {"name": "web", "flavor": "m1.tiny", "image": "img-1", "network_id": "net-1"}
    lines = result.stdout.splitlines()
    printed = [
        next(k for k, _, _ in steps if k in line)
        for line in lines
        if "Instance" in line or "Port" in line
    ]
    assert printed == [k for k, _, _ in steps]  # in order, each once
    assert "host=host-a" in result.stdout
    assert lines[-1] == "instance web is RUNNING on host-a"


async def test_instance_create_sends_the_restart_policy(tmp_path: Path) -> None:
    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        shown = {**body, "id": "i-1", "status": "BUILDING", "flavor": {"name": body["flavor"]}}
        return web.json_response(shown, status=202)

    async with fake_api({("POST", "/v1/instances"): create}) as api:
        args = ["--api", api.url, "instance", "create", "web", "--flavor", "m1.tiny"]
        result = await run([*args, "--restart-policy", "on-crash"], tmp_path)
        refused = await run([*args, "--restart-policy", "sometimes"], tmp_path)
        [post] = [r for r in api.requests if r.method == "POST"]
    assert result.exit_code == 0, result.output
    assert orjson.loads(post.body)["restart_policy"] == "on-crash"
    assert "restart policy" in result.stdout
    assert refused.exit_code != 0  # refused by the CLI: nothing was sent


async def test_image_upload_streams_the_file_with_its_format_and_visibility(
    tmp_path: Path,
) -> None:
    image = tmp_path / "disk.qcow2"
    content = b"QFI\xfb" + bytes(range(256)) * 12_000  # about 3 MiB: several chunks
    image.write_bytes(content)

    async def upload(request: web.Request) -> web.Response:
        digest = hashlib.sha256(await request.read()).hexdigest()
        return web.json_response(
            {"id": "img-1", "name": request.query["name"], "status": "available", "sha256": digest},
            status=201,
        )

    async def tenants(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer t0ken":
            return problem(403, "Forbidden", "admin only")
        return web.json_response({"items": [], "next": None})

    routes = {("POST", "/v1/images"): upload, ("GET", "/v1/tenants"): tenants}
    async with fake_api(routes) as api:
        args = ["--api", api.url, "--json", "image", "upload", str(image), "--name", "tiny"]
        result = await run([*args, "--public"], tmp_path)
        seen = api.requests[-1]
        # A tenant's public upload: refused before any of the file is sent.
        refused = await run([*args, "--public"], tmp_path, token="tenant-token")
        last = api.requests[-1]
    assert refused.exit_code == errors.AUTH
    assert "only administrators publish public images" in refused.stderr
    assert (last.method, last.path) == ("GET", "/v1/tenants")
    assert result.exit_code == 0, result.output
    assert seen.query == {"name": "tiny", "disk_format": "qcow2", "visibility": "public"}
    assert seen.headers["Content-Type"] == "application/octet-stream"
    assert seen.headers["Content-Length"] == str(len(content))
    assert orjson.loads(result.stdout)["sha256"] == hashlib.sha256(content).hexdigest()


async def test_security_group_rules_and_prices_become_the_api_bodies(tmp_path: Path) -> None:
    async def created(request: web.Request) -> web.Response:
        answer = {"id": "sg-1", "name": "web", "default": False, "rules": []}
        return web.json_response(answer, status=201)

    async def prices(request: web.Request) -> web.Response:
        return web.json_response(await request.json())

    routes = {("POST", "/v1/security-groups"): created, ("PUT", "/v1/prices"): prices}
    async with fake_api(routes) as api:
        rules = ["direction=ingress,protocol=tcp,port=22,remote_cidr=0.0.0.0/0", "direction=egress"]
        group = await run(
            ["--api", api.url, "security-group", "create", "web"]
            + [arg for rule in rules for arg in ("--rule", rule)]
            + ["--rule", "direction=ingress,protocol=udp,port=1000-2000"],
            tmp_path,
        )
        price = await run(
            [
                *("--api", api.url, "price", "set", "--currency", "EUR"),
                *("--effective-from", "2026-12-01T00:00:00Z", "--flavor", "m1.tiny=0.01"),
                *("--volume-gb-month", "0.05", "--egress-gb", "0.02", "--public-ip-hour", "0.004"),
            ],
            tmp_path,
        )
        group_body = orjson.loads(api.requests[0].body)
        price_body = orjson.loads(api.requests[1].body)
    assert group.exit_code == 0, group.output
    assert group_body["rules"] == [
        {"direction": "ingress", "protocol": "tcp", "port_min": 22, "port_max": 22,
         "remote_cidr": "0.0.0.0/0"},
        {"direction": "egress"},
        {"direction": "ingress", "protocol": "udp", "port_min": 1000, "port_max": 2000},
    ]  # fmt: skip
    assert price.exit_code == 0, price.output
    assert price_body == {
        "currency": "EUR",
        "effective_from": "2026-12-01T00:00:00Z",
        "flavor_hour": {"m1.tiny": "0.01"},
        "volume_gb_month": "0.05",
        "egress_gb": "0.02",
        "public_ip_hour": "0.004",
    }
    assert "m1.tiny" in price.stdout


async def test_events_tail_without_follow_prints_the_last_events_in_time_order(
    tmp_path: Path,
) -> None:
    async def history(request: web.Request) -> web.Response:
        events = [
            {"event_id": f"e-{i}", "type": f"Step{i}", "producer": "p",
             "occurred_at": f"2026-11-23T21:00:{i:02d}Z", "payload": {}}
            for i in (3, 1, 2, 0)
        ]  # fmt: skip
        return web.json_response(events)

    # An id as the API hands them out: used as it is, with no listing to find it.
    instance_id = "0b6f2c1e-5d3a-4f7e-9c2b-1a2b3c4d5e6f"
    async with fake_api({("GET", f"/v1/instances/{instance_id}/events"): history}) as api:
        args = ["--api", api.url, "events", "tail", instance_id, "-n", "3", "--no-follow"]
        result = await run(args, tmp_path)
    assert result.exit_code == 0, result.output
    assert [line.split()[3] for line in result.stdout.splitlines()] == ["Step1", "Step2", "Step3"]


async def test_events_tail_of_every_instance_names_each_one_and_skips_a_vanished_one(
    tmp_path: Path,
) -> None:
    instances = [{"id": "i-1", "name": "web"}, {"id": "i-2", "name": "db"}, {"id": "i-3"}]

    async def listing(request: web.Request) -> web.Response:
        return web.json_response({"items": instances, "next": None})

    async def history(request: web.Request) -> web.Response:
        instance_id = request.match_info["id"]
        if instance_id == "i-3":  # deleted between the listing and its history
            return problem(404, "Not found", "no instance i-3")
        second = 1 if instance_id == "i-1" else 2
        event = {"event_id": f"e-{instance_id}", "type": "InstanceStarted", "producer": "compute",
                 "occurred_at": f"2026-11-23T21:00:0{second}Z", "payload": {}}  # fmt: skip
        return web.json_response([event])

    routes = {("GET", "/v1/instances"): listing, ("GET", "/v1/instances/{id}/events"): history}
    async with fake_api(routes) as api:
        result = await run(["--api", api.url, "events", "tail", "--no-follow"], tmp_path)
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["web", "db"]


async def test_a_name_two_resources_share_is_refused_before_any_write(tmp_path: Path) -> None:
    async def networks(request: web.Request) -> web.Response:
        items = [{"id": "net-1", "name": "lan"}, {"id": "net-2", "name": "lan"}]
        return web.json_response({"items": items})

    async with fake_api({("GET", "/v1/networks"): networks}) as api:
        args = ["--api", api.url, "port", "create", "--network", "lan"]
        result = await run(args, tmp_path)
        assert [r.method for r in api.requests] == ["GET"]
    assert result.exit_code == errors.USAGE
    assert "net-1, net-2" in result.stderr


def test_prices_by_default_apply_from_the_next_whole_hour() -> None:
    moment = datetime(2026, 11, 23, 21, 59, 59, 999999, tzinfo=UTC)
    assert next_hour(moment) == "2026-11-23T22:00:00Z"
    assert next_hour(moment.replace(hour=23, minute=0, second=0, microsecond=0)) == (
        "2026-11-24T00:00:00Z"
    )


async def test_a_network_is_shown_and_deleted_by_its_name(tmp_path: Path) -> None:
    network = {"id": "net-1", "name": "lan", "status": "DELETING"}

    async def networks(request: web.Request) -> web.Response:
        return web.json_response({"items": [network]})

    async def delete(request: web.Request) -> web.Response:
        return web.json_response(network, status=202)

    routes = {("GET", "/v1/networks"): networks, ("DELETE", "/v1/networks/net-1"): delete}
    async with fake_api(routes) as api:
        result = await run(["--api", api.url, "network", "delete", "lan"], tmp_path)
        assert [(r.method, r.path) for r in api.requests][-1] == ("DELETE", "/v1/networks/net-1")
    assert result.exit_code == 0, result.stderr
    assert "network lan is DELETING" in result.stdout


async def test_token_list_and_tenant_disable_enable_call_the_admin_routes(tmp_path: Path) -> None:
    tokens = [
        {"id": "tok-1", "created_at": "2026-11-23T21:00:00Z", "expires_at": None},
        {"id": "tok-2", "created_at": "2026-11-23T22:00:00Z", "expires_at": None},
    ]

    async def token_page(request: web.Request) -> web.Response:
        if request.query.get("cursor") == "c2":
            item = {**tokens[1], "revoked": True, "revoked_at": "2026-11-24T00:00:00Z"}
            return web.json_response({"items": [item], "next": None})
        item = {**tokens[0], "revoked": False, "revoked_at": None}
        return web.json_response({"items": [item], "next": "c2"})

    async def act(request: web.Request) -> web.Response:
        body = await request.json()
        enabled = body["action"] == "enable"
        return web.json_response({"id": "t-1", "name": "acme", "enabled": enabled})

    routes = {
        ("GET", "/v1/tenants/t-1/tokens"): token_page,
        ("POST", "/v1/tenants/t-1/actions"): act,
    }
    async with fake_api(routes) as api:
        listed = await run(["--api", api.url, "token", "list", "t-1"], tmp_path)
        disabled = await run(
            ["--api", api.url, "tenant", "disable", "t-1", "--reason", "unpaid"], tmp_path
        )
        enabled = await run(["--api", api.url, "--json", "tenant", "enable", "t-1"], tmp_path)
        posts = [orjson.loads(r.body) for r in api.requests if r.method == "POST"]
    assert listed.exit_code == 0, listed.output
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "CREATED", "EXPIRES", "REVOKED"]
    assert [row.split()[0] for row in rows] == ["tok-1", "tok-2"]
    assert disabled.exit_code == 0, disabled.output
    assert "tenant acme disabled" in disabled.stderr
    assert orjson.loads(enabled.stdout) == {"id": "t-1", "name": "acme", "enabled": True}
    assert posts == [{"action": "disable", "reason": "unpaid"}, {"action": "enable"}]


async def test_tenant_delete_resolves_a_name_and_a_refusal_names_what_it_owns(
    tmp_path: Path,
) -> None:
    owned = "tenant t-1 still owns 2 instances, 1 network: delete them first"
    answers = iter([problem(409, "Conflict with the current state", owned), None])

    async def tenants(request: web.Request) -> web.Response:
        return web.json_response({"items": [{"id": "t-1", "name": "acme"}], "next": None})

    async def delete(request: web.Request) -> web.Response:
        refused = next(answers)
        return refused if refused is not None else web.Response(status=204)

    routes = {("GET", "/v1/tenants"): tenants, ("DELETE", "/v1/tenants/t-1"): delete}
    async with fake_api(routes) as api:
        refused = await run(["--api", api.url, "tenant", "delete", "acme"], tmp_path)
        deleted = await run(["--api", api.url, "tenant", "delete", "acme"], tmp_path)
        deletes = [r.path for r in api.requests if r.method == "DELETE"]
    assert refused.exit_code == 1, refused.output
    assert "2 instances, 1 network:" in refused.stderr
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.strip() == "deleted t-1"
    assert deletes == ["/v1/tenants/t-1", "/v1/tenants/t-1"]


async def test_a_network_without_dhcp_is_asked_for_and_shown_so(tmp_path: Path) -> None:
    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        made = {"id": "net-1", "status": "BUILDING", "dhcp": body.get("dhcp", True), **body}
        return web.json_response(made, status=202)

    async with fake_api({("POST", "/v1/networks"): create}) as api:
        args = ["--api", api.url, "network", "create", "lan", "--cidr", "10.0.0.0/24"]
        without = await run([*args, "--no-dhcp"], tmp_path)
        default = await run(args, tmp_path)
        bodies = [orjson.loads(r.body) for r in api.requests if r.method == "POST"]
    assert without.exit_code == 0, without.stderr
    assert default.exit_code == 0, default.stderr
    # --no-dhcp sends `"dhcp": false`; without it the API's default (true) applies.
    assert bodies == [
        {"name": "lan", "cidr": "10.0.0.0/24", "dhcp": False},
        {"name": "lan", "cidr": "10.0.0.0/24"},
    ]
    assert [line.split()[-1] for line in without.stdout.splitlines() if "dhcp" in line] == ["no"]
    assert [line.split()[-1] for line in default.stdout.splitlines() if "dhcp" in line] == ["yes"]
