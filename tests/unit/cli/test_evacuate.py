"""`virga instance evacuate`: what it sends, and --wait following the flow to its end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from tests.unit.cli.fake_api import fake_api, problem, run

from virga_cli import errors

INSTANCE = "5f0c6a8e-0000-4000-8000-000000000002"


def routes(end: str, reason: str = "") -> dict[tuple[str, str], Any]:
    """An evacuation whose flow takes two polls to end with `end`."""
    steps: list[tuple[str, dict[str, Any]]] = [
        ("EvacuationRequested", {"host": None}),
        ("FlowStarted", {"definition": "evacuation", "subject": INSTANCE}),
        ("InstanceDisksFenced", {"broken": ["volume-x"]}),
        (end, {"subject": INSTANCE, "reason": reason} if reason else {"subject": INSTANCE}),
    ]
    polls = {"n": 0}
    host = "host-b" if end == "FlowCompleted" else "host-a"

    async def act(request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("action") != "evacuate":
            return problem(422, "Invalid request", "bad action")
        view = {"id": INSTANCE, "name": "web", "status": "RUNNING", "host": "host-a"}
        return web.json_response(view, status=202)

    async def history(request: web.Request) -> web.Response:
        shown = steps[: polls["n"]] if polls["n"] else []
        polls["n"] += 2
        events = [
            {"event_id": f"e-{i + 1}", "type": kind, "producer": "x",
             "occurred_at": f"2026-11-23T21:00:0{i + 1}Z", "payload": payload}
            for i, (kind, payload) in enumerate(shown)
        ]  # fmt: skip
        return web.json_response(events)

    async def show(request: web.Request) -> web.Response:
        return web.json_response({"id": INSTANCE, "name": "web", "status": "RUNNING", "host": host})

    return {
        ("POST", f"/v1/instances/{INSTANCE}/actions"): act,
        ("GET", f"/v1/instances/{INSTANCE}"): show,
        ("GET", f"/v1/instances/{INSTANCE}/events"): history,
    }


async def test_evacuate_sends_the_action_and_the_host(tmp_path: Path) -> None:
    async with fake_api(routes("FlowCompleted")) as api:
        named = await run(
            ["--api", api.url, "instance", "evacuate", INSTANCE, "--host", "host-b"], tmp_path
        )
        picked = await run(["--api", api.url, "instance", "evacuate", INSTANCE], tmp_path)
        bodies = [orjson.loads(r.body) for r in api.requests if r.method == "POST"]
    assert named.exit_code == 0, named.output
    assert picked.exit_code == 0, picked.output
    assert bodies == [{"action": "evacuate", "host": "host-b"}, {"action": "evacuate"}]
    assert "instance web is RUNNING" in named.output


async def test_wait_follows_the_evacuation_until_it_runs_on_the_new_host(tmp_path: Path) -> None:
    async with fake_api(routes("FlowCompleted")) as api:
        result = await run(["--api", api.url, "instance", "evacuate", INSTANCE, "--wait"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "InstanceDisksFenced" in result.output
    assert "instance web runs on host-b" in result.output


async def test_wait_fails_with_the_reason_when_the_evacuation_fails(tmp_path: Path) -> None:
    async with fake_api(routes("FlowFailed", reason="no host fits")) as api:
        result = await run(["--api", api.url, "instance", "evacuate", INSTANCE, "--wait"], tmp_path)
    assert result.exit_code == errors.FAILED, result.output
    assert "evacuation of instance web" in result.output
    assert "failed: no host fits; it runs on host-a" in result.output
