"""`virga instance resize`: what it sends, and --wait following the flow to its end."""

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
SMALL = {"name": "m1.small", "vcpus": 1, "ram_mb": 2048, "disk_gb": 20}
MEDIUM = {"name": "m1.medium", "vcpus": 2, "ram_mb": 4096, "disk_gb": 40}


def routes(end: str, reason: str = "") -> dict[tuple[str, str], Any]:
    """A resize whose flow takes two polls to end with `end`."""
    steps: list[tuple[str, dict[str, Any]]] = [
        ("InstanceResizeRequested", {"flavor": MEDIUM}),
        ("FlowStarted", {"definition": "resize", "subject": INSTANCE}),
        ("InstanceResized", {"host": "host-a", "flavor": MEDIUM, "running": True}),
        (end, {"subject": INSTANCE, "reason": reason} if reason else {"subject": INSTANCE}),
    ]
    polls = {"n": 0}
    final = MEDIUM if end == "FlowCompleted" else SMALL

    async def act(request: web.Request) -> web.Response:
        view = {"id": INSTANCE, "name": "web", "status": "RESIZING", "flavor": SMALL}
        return web.json_response(view, status=202)

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
        view = {"id": INSTANCE, "name": "web", "status": "RUNNING", "flavor": final}
        return web.json_response(view)

    return {
        ("POST", f"/v1/instances/{INSTANCE}/actions"): act,
        ("GET", f"/v1/instances/{INSTANCE}"): show,
        ("GET", f"/v1/instances/{INSTANCE}/events"): history,
    }


async def test_resize_sends_the_flavor_as_the_resize_action(tmp_path: Path) -> None:
    async with fake_api(routes("FlowCompleted")) as api:
        result = await run(
            ["--api", api.url, "instance", "resize", INSTANCE, "m1.medium"], tmp_path
        )
        bodies = [orjson.loads(r.body) for r in api.requests if r.method == "POST"]
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "resize: instance web is RESIZING"
    assert bodies == [{"action": "resize", "flavor": "m1.medium"}]


async def test_wait_follows_the_flow_until_it_runs_resized(tmp_path: Path) -> None:
    async with fake_api(routes("FlowCompleted")) as api:
        result = await run(
            ["--api", api.url, "instance", "resize", INSTANCE, "m1.medium", "--wait"], tmp_path
        )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == "instance web is RUNNING as m1.medium"
    printed = " ".join(lines)
    for kind in ("FlowStarted", "InstanceResized", "FlowCompleted"):
        assert printed.count(kind) == 1, result.stdout
    assert "InstanceStarted" not in printed  # what happened before the request is known


async def test_wait_fails_with_the_reason_when_the_flow_fails(tmp_path: Path) -> None:
    async with fake_api(routes("FlowFailed", reason="pool full")) as api:
        result = await run(
            ["--api", api.url, "instance", "resize", INSTANCE, "m1.medium", "--wait"], tmp_path
        )
    assert result.exit_code == errors.FAILED
    assert "failed: pool full; it is RUNNING as it was" in result.output


async def test_a_refused_resize_shows_the_problem(tmp_path: Path) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return problem(422, "Unprocessable", "flavor: m1.tiny's disk is smaller")

    path = f"/v1/instances/{INSTANCE}/actions"
    async with fake_api({("POST", path): refuse}) as api:
        result = await run(["--api", api.url, "instance", "resize", INSTANCE, "m1.tiny"], tmp_path)
    assert result.exit_code != 0
    assert "smaller" in result.output
