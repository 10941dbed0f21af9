"""The CLI names the problem and exits with a code per kind of failure."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from tests.unit.cli.fake_api import fake_api, problem, run

from virga_cli import errors


async def test_a_validation_problem_prints_title_detail_and_field_and_exits_1(
    tmp_path: Path,
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return problem(
            422,
            "The request is not valid",
            "flavor: no flavor named m9.huge",
            errors=[{"field": "flavor", "message": "no flavor named m9.huge"}],
            correlation_id="req-42",
        )

    async with fake_api({("POST", "/v1/instances"): refuse}) as api:
        result = await run(
            ["--api", api.url, "instance", "create", "web", "--flavor", "m9.huge"], tmp_path
        )
    assert result.exit_code == errors.API_ERROR
    assert "HTTP 422 The request is not valid: flavor: no flavor named m9.huge" in result.stderr
    assert "field flavor: no flavor named m9.huge" in result.stderr
    assert "req-42" in result.stderr
    assert result.stdout == ""


async def test_refused_tokens_exit_4_and_server_failures_exit_5(tmp_path: Path) -> None:
    async def unauthorized(request: web.Request) -> web.Response:
        return problem(401, "Unauthorized", "unknown token")

    async def catching_up(request: web.Request) -> web.Response:
        return problem(503, "Service unavailable", "the gateway is catching up with the log")

    routes = {("GET", "/v1/flavors"): unauthorized, ("GET", "/v1/volumes"): catching_up}
    async with fake_api(routes) as api:
        refused = await run(["--api", api.url, "flavor", "list"], tmp_path)
        failed = await run(["--api", api.url, "volume", "list"], tmp_path)
    assert refused.exit_code == errors.AUTH
    assert "HTTP 401 Unauthorized: unknown token" in refused.stderr
    assert failed.exit_code == errors.SERVER_ERROR
    assert "catching up" in failed.stderr


async def test_an_answer_that_is_not_a_problem_still_shows_its_status(tmp_path: Path) -> None:
    async def proxy_page(request: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>Bad Gateway</html>")

    async with fake_api({("GET", "/v1/images"): proxy_page}) as api:
        result = await run(["--api", api.url, "image", "list"], tmp_path)
    assert result.exit_code == errors.SERVER_ERROR
    assert "HTTP 502" in result.stderr
    assert "Bad Gateway" in result.stderr


async def test_nothing_listening_exits_3_naming_the_url(tmp_path: Path) -> None:
    async with fake_api({}) as api:
        url = api.url  # the port is free again once the server closed
    result = await run(["--api", url, "instance", "list"], tmp_path)
    assert result.exit_code == errors.UNREACHABLE
    assert f"cannot reach the Virga API at {url}" in result.stderr


async def test_no_token_exits_4_before_any_request(tmp_path: Path) -> None:
    async with fake_api({}) as api:
        result = await run(["--api", api.url, "instance", "list"], tmp_path, token=None)
        assert api.requests == []
    assert result.exit_code == errors.AUTH
    assert "virga login" in result.stderr


async def test_bad_command_lines_exit_2(tmp_path: Path) -> None:
    missing = await run(["instance", "create", "web"], tmp_path)
    assert missing.exit_code == errors.USAGE
    assert "--flavor" in missing.stderr
    bad_rule = await run(["security-group", "create", "web", "--rule", "protocol=tcp"], tmp_path)
    assert bad_rule.exit_code == errors.USAGE
    assert "direction" in bad_rule.stderr


async def test_wait_ends_with_the_fault_and_exit_6_when_the_instance_goes_to_error(
    tmp_path: Path,
) -> None:
    instance = {"id": "i-1", "name": "web", "status": "BUILDING", "fault": None}

    async def create(request: web.Request) -> web.Response:
        return web.json_response(instance, status=202)

    async def show(request: web.Request) -> web.Response:
        fault = "no host has 64 vCPUs free (3 hosts refused: cpu)"
        return web.json_response({**instance, "status": "ERROR", "fault": fault})

    async def history(request: web.Request) -> web.Response:
        failed = {
            "event_id": "e-2",
            "type": "InstanceSchedulingFailed",
            "producer": "scheduler",
            "occurred_at": "2026-11-23T21:00:01Z",
            "payload": {"reason": "no host"},
        }
        return web.json_response([failed])

    routes = {
        ("POST", "/v1/instances"): create,
        ("GET", "/v1/instances/i-1"): show,
        ("GET", "/v1/instances/i-1/events"): history,
    }
    async with fake_api(routes) as api:
        args = ["--api", api.url, "instance", "create", "web", "--flavor", "c1.huge", "--wait"]
        result = await run(args, tmp_path)
    assert result.exit_code == errors.FAILED
    assert "InstanceSchedulingFailed" in result.stdout
    assert "went to ERROR: no host has 64 vCPUs free" in result.stderr
