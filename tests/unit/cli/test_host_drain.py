"""`virga host drain`: what it sends, and --wait following the drain to its end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from tests.unit.cli.fake_api import fake_api, problem, run

from virga_cli import errors

DRAINING = {"id": "d-1", "status": "DRAINING", "instances": ["i1", "i2"], "moving": [],
            "moved": [], "unmoved": [], "stopped": ["i3"], "reason": ""}  # fmt: skip


def host(drain: dict[str, Any] | None, name: str = "hv-a") -> dict[str, Any]:
    return {"name": name, "enabled": drain is None, "state": "up", "drain": drain}


def routes(end: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """A drain that moves its instances over three polls, then ends as `end` says."""
    polls = {"n": 0}
    stages = [
        {**DRAINING, "moving": ["i1", "i2"]},
        {**DRAINING, "moving": ["i2"], "moved": ["i1"]},
        {**DRAINING, **end},
    ]

    async def drain(request: web.Request) -> web.Response:
        return web.json_response(host(DRAINING), status=202)

    async def listing(request: web.Request) -> web.Response:
        stage = stages[min(polls["n"], len(stages) - 1)]
        polls["n"] += 1
        return web.json_response({"items": [host(None, "hv-0"), host(stage)], "next": None})

    return {("POST", "/v1/hosts/hv-a/actions"): drain, ("GET", "/v1/hosts"): listing}


async def test_drain_sends_the_action_and_prints_the_drain(tmp_path: Path) -> None:
    async with fake_api(routes({"status": "DRAINED"})) as api:
        result = await run(["--api", api.url, "host", "drain", "hv-a"], tmp_path)
        bodies = [orjson.loads(r.body) for r in api.requests if r.method == "POST"]
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "draining hv-a: drain d-1"
    assert bodies == [{"action": "drain"}]


async def test_wait_follows_the_drain_until_the_host_is_drained(tmp_path: Path) -> None:
    drained = {"status": "DRAINED", "moving": [], "moved": ["i1", "i2"]}
    async with fake_api(routes(drained)) as api:
        args = ["--api", api.url, "host", "drain", "hv-a", "--wait", "--reason", "disk swap"]
        result = await run(args, tmp_path)
        bodies = [orjson.loads(r.body) for r in api.requests if r.method == "POST"]
    assert result.exit_code == 0, result.output
    assert bodies == [{"action": "drain", "reason": "disk swap"}]
    lines = result.stdout.splitlines()
    assert lines[0] == "DRAINING: 0/2 moved, 1 stopped left in place; moving: i1, i2"
    assert lines[-1] == "host hv-a is DRAINED: 2/2 moved, 1 stopped left in place"


async def test_wait_fails_naming_the_instances_that_could_not_move(tmp_path: Path) -> None:
    failed = {"status": "FAILED", "moving": [], "moved": ["i1"], "unmoved": ["i2"],
              "reason": "1 instance(s) could not move: i2"}  # fmt: skip
    async with fake_api(routes(failed)) as api:
        result = await run(["--api", api.url, "host", "drain", "hv-a", "--wait"], tmp_path)
    assert result.exit_code == errors.FAILED
    assert "drain of host hv-a failed: i2 could not move" in result.output


async def test_a_refused_drain_shows_the_problem(tmp_path: Path) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return problem(409, "Conflict", "host hv-a is down: its instances cannot be live-migrated")

    async with fake_api({("POST", "/v1/hosts/hv-a/actions"): refuse}) as api:
        result = await run(["--api", api.url, "host", "drain", "hv-a"], tmp_path)
    assert result.exit_code != 0
    assert "is down" in result.output
