"""`virga rebalance`: the plan printed, --apply posting it, --wait following it to its end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from tests.unit.cli.fake_api import fake_api, run

from virga_cli import errors

MOVES = [
    {"instance_id": "i1", "source": "hv-a", "destination": "hv-b", "score_after": 0.5},
    {"instance_id": "i2", "source": "hv-a", "destination": "hv-c", "score_after": 0.25},
]
RUNNING = {"id": "r-1", "status": "RUNNING", "moves": MOVES, "score_before": 0.75,
           "score_after": 0.25, "moving": [], "moved": [], "unmoved": [],
           "skipped": []}  # fmt: skip


def routes(end: dict[str, Any], moves: list[dict[str, Any]] = MOVES) -> dict[tuple[str, str], Any]:
    """A plan of `moves`; once posted, a run that moves over three polls, then ends as `end`."""
    polls, posted = {"n": 0}, {"yes": False}
    stages = [
        {**RUNNING, "moving": ["i1", "i2"]},
        {**RUNNING, "moving": ["i2"], "moved": ["i1"]},
        {**RUNNING, "status": "FINISHED", **end},
    ]

    async def plan(request: web.Request) -> web.Response:
        last = None
        if posted["yes"]:
            last = stages[min(polls["n"], len(stages) - 1)]
            polls["n"] += 1
        body = {"moves": moves, "score_before": 0.75, "score_after": 0.25, "last_run": last}
        return web.json_response(body)

    async def execute(request: web.Request) -> web.Response:
        posted["yes"] = True
        return web.json_response(RUNNING, status=202)

    return {("GET", "/v1/rebalance"): plan, ("POST", "/v1/rebalance"): execute}


async def test_the_plan_is_printed_move_by_move(tmp_path: Path) -> None:
    async with fake_api(routes({})) as api:
        result = await run(["--api", api.url, "rebalance"], tmp_path)
        posted = [r for r in api.requests if r.method == "POST"]
    assert result.exit_code == 0, result.output
    assert posted == []
    assert result.stdout.splitlines() == [
        "i1  hv-a -> hv-b  (score 0.5000)",
        "i2  hv-a -> hv-c  (score 0.2500)",
        "2 moves: score 0.7500 -> 0.2500",
    ]


async def test_a_balanced_cluster_says_so(tmp_path: Path) -> None:
    async with fake_api(routes({}, moves=[])) as api:
        result = await run(["--api", api.url, "rebalance"], tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "balanced: no move lowers the score (0.7500)"


async def test_apply_posts_and_prints_the_run(tmp_path: Path) -> None:
    async with fake_api(routes({})) as api:
        result = await run(["--api", api.url, "rebalance", "--apply"], tmp_path)
        posted = [r for r in api.requests if r.method == "POST"]
    assert result.exit_code == 0, result.output
    assert len(posted) == 1
    assert result.stdout.strip() == "rebalancing: 2 moves, run r-1"


async def test_wait_follows_the_run_until_it_finished(tmp_path: Path) -> None:
    async with fake_api(routes({"moved": ["i1", "i2"]})) as api:
        result = await run(["--api", api.url, "rebalance", "--apply", "--wait"], tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "RUNNING: 0/2 moved, 0 skipped; moving: i1, i2"
    assert lines[-1] == "rebalance r-1 FINISHED: 2/2 moved, 0 skipped"


async def test_wait_fails_naming_the_instances_that_could_not_move(tmp_path: Path) -> None:
    async with fake_api(routes({"moved": ["i1"], "unmoved": ["i2"]})) as api:
        result = await run(["--api", api.url, "rebalance", "--apply", "--wait"], tmp_path)
    assert result.exit_code == errors.FAILED
    assert "rebalance r-1: i2 could not move" in result.output
