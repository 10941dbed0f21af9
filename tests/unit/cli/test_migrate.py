"""`virga instance migrate`: what it sends, and --wait following the flow to its end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from tests.unit.cli.fake_api import fake_api, problem, run

from virga_cli import errors

INSTANCE = "5f0c6a8e-0000-4000-8000-000000000001"
BEFORE = {"event_id": "e-0", "type": "InstanceStarted", "producer": "compute@host-a",
          "occurred_at": "2026-11-23T21:00:00Z", "payload": {"host": "host-a"}}  # fmt: skip


def routes(end: str, reason: str = "") -> dict[tuple[str, str], Any]:
    """A migration whose flow takes two polls to end with `end`."""
    steps: list[tuple[str, dict[str, Any]]] = [
        ("LiveMigrationRequested", {"host": "host-b"}),
        ("FlowStarted", {"definition": "live-migration", "subject": INSTANCE}),
        ("InstanceMigrated", {"host": "host-a", "destination": "host-b"}),
        (end, {"subject": INSTANCE, "reason": reason} if reason else {"subject": INSTANCE}),
    ]
    polls = {"n": 0}
    host = "host-b" if end == "FlowCompleted" else "host-a"

    async def migrate(request: web.Request) -> web.Response:
        view = {"id": INSTANCE, "name": "web", "status": "RUNNING", "host": "host-a"}
        return web.json_response({"flow_id": "f-1", "instance": view}, status=202)

    async def history(request: web.Request) -> web.Response:
        shown = steps[: polls["n"]] if polls["n"] else []
        polls["n"] += 2
        events = [
            {"event_id": f"e-{i + 1}", "type": kind, "producer": "x",
             "occurred_at": f"2026-11-23T21:00:0{i + 1}Z", "payload": payload}
            for i, (kind, payload) in enumerate(shown)
        ]  # fmt: skip
        return web.json_response([BEFORE, *events])

    async def show(request: web.Request) -> web.Response:
        return web.json_response({"id": INSTANCE, "name": "web", "status": "RUNNING", "host": host})

    return {
        ("POST", f"/v1/instances/{INSTANCE}/migrate"): migrate,
        ("GET", f"/v1/instances/{INSTANCE}"): show,
        ("GET", f"/v1/instances/{INSTANCE}/events"): history,
    }


async def test_migrate_sends_the_host_and_prints_the_flow(tmp_path: Path) -> None:
    async with fake_api(routes("FlowCompleted")) as api:
        named = await run(
            ["--api", api.url, "instance", "migrate", INSTANCE, "--host", "host-b"], tmp_path
        )
        picked = await run(["--api", api.url, "instance", "migrate", INSTANCE], tmp_path)
        bodies = [orjson.loads(r.body) for r in api.requests if r.method == "POST"]
    assert named.exit_code == 0, named.output
    assert named.stdout.strip() == "migrating: flow f-1"
    assert picked.exit_code == 0, picked.output
    assert bodies == [{"host": "host-b"}, {}]


async def test_wait_follows_the_flow_until_it_runs_on_the_new_host(tmp_path: Path) -> None:
    async with fake_api(routes("FlowCompleted")) as api:
        result = await run(["--api", api.url, "instance", "migrate", INSTANCE, "--wait"], tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == "instance web runs on host-b"
    printed = " ".join(lines)
    for kind in ("FlowStarted", "InstanceMigrated", "FlowCompleted"):
        assert printed.count(kind) == 1, result.stdout
    assert "InstanceStarted" not in printed  # what happened before the request is known


async def test_wait_fails_with_the_reason_when_the_flow_fails(tmp_path: Path) -> None:
    async with fake_api(routes("FlowFailed", reason="migration failed: unreachable")) as api:
        result = await run(["--api", api.url, "instance", "migrate", INSTANCE, "--wait"], tmp_path)
    assert result.exit_code == errors.FAILED
    assert "failed: migration failed: unreachable; it runs on host-a" in result.output


async def test_a_refused_migration_shows_the_problem(tmp_path: Path) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return problem(409, "Conflict", f"instance {INSTANCE} is already migrating")

    path = f"/v1/instances/{INSTANCE}/migrate"
    async with fake_api({("POST", path): refuse}) as api:
        result = await run(["--api", api.url, "instance", "migrate", INSTANCE], tmp_path)
    assert result.exit_code != 0
    assert "already migrating" in result.output
