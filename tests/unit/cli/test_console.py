"""`virga instance console`: a ticket from the API, the WebSocket it names, typed input in and
the guest's output out, Ctrl-] to detach; refusals as exit codes. And `--json` after any
command."""

from __future__ import annotations

from pathlib import Path

import click
import orjson
from aiohttp import WSMsgType, web
from tests.unit.cli.fake_api import FakeApi, Handler, fake_api, problem, run

from virga_cli import errors
from virga_cli.main import cli

INSTANCE = {"id": "i-1", "name": "web-1", "status": "RUNNING"}


TYPED: list[bytes] = []
"""What the fake guest received."""


def routes(api: list[FakeApi]) -> dict[tuple[str, str], Handler]:
    async def instances(request: web.Request) -> web.Response:
        return web.json_response({"items": [INSTANCE], "next": None})

    async def ticket(request: web.Request) -> web.Response:
        url = api[0].url.replace("http://", "ws://")
        body = {"id": "tk", "url": f"{url}/ws?ticket=vct_x", "expires_at": "2026-01-01T00:00:00Z"}
        return web.json_response(body, status=201)

    async def socket(request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") != "vct_x":
            return problem(403, "Forbidden", "the console ticket is unknown, used or expired")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_bytes(b"/ # ")
        async for message in ws:  # a guest shell that echoes
            if message.type == WSMsgType.BINARY:
                TYPED.append(message.data)
                await ws.send_bytes(b"typed:" + message.data)
        return ws

    return {
        ("GET", "/v1/instances"): instances,
        ("POST", "/v1/instances/i-1/console"): ticket,
        ("GET", "/ws"): socket,
    }


async def test_the_console_relays_until_ctrl_right_bracket(tmp_path: Path) -> None:
    holder: list[FakeApi] = []
    TYPED.clear()
    async with fake_api(routes(holder)) as api:
        holder.append(api)
        result = await run(
            ["--api", api.url, "instance", "console", "web-1"], tmp_path, stdin="uname\r\x1dafter"
        )
    assert result.exit_code == 0, result.output
    assert "/ # " in result.stdout
    assert b"".join(TYPED) == b"uname\r"  # nothing typed after the detach key is sent
    assert "detach with Ctrl-]" in result.stderr
    assert "console detached" in result.stderr
    [post] = [r for r in api.requests if r.method == "POST"]
    assert post.path == "/v1/instances/i-1/console"


async def test_the_guests_answers_are_printed_until_the_input_ends(tmp_path: Path) -> None:
    holder: list[FakeApi] = []
    async with fake_api(routes(holder)) as api:
        holder.append(api)
        result = await run(
            ["--api", api.url, "instance", "console", "i-1"], tmp_path, stdin="uname\r"
        )
    assert result.exit_code == 0, result.output
    assert "typed:uname\r" in result.stdout
    assert "console end of input" in result.stderr


async def test_a_refused_console_exits_with_the_refusals_code(tmp_path: Path) -> None:
    holder: list[FakeApi] = []
    handlers = routes(holder)

    async def stale(request: web.Request) -> web.Response:
        url = holder[0].url.replace("http://", "ws://")
        body = {"id": "tk", "url": f"{url}/ws?ticket=used", "expires_at": "2026-01-01T00:00:00Z"}
        return web.json_response(body, status=201)

    handlers[("POST", "/v1/instances/i-1/console")] = stale
    async with fake_api(handlers) as api:
        holder.append(api)
        result = await run(["--api", api.url, "instance", "console", "i-1"], tmp_path, stdin="")
    assert result.exit_code == errors.AUTH
    assert "HTTP 403" in result.stderr


async def test_the_console_log_prints_the_last_lines(tmp_path: Path) -> None:
    async def log(request: web.Request) -> web.Response:
        return web.json_response({"lines": ["booting", f"asked {request.query['lines']}"]})

    handlers = {**routes([]), ("GET", "/v1/instances/i-1/console-log"): log}
    async with fake_api(handlers) as api:
        args = ["--api", api.url, "instance", "console-log", "web-1", "--lines", "7"]
        human = await run(args, tmp_path)
        as_json = await run([*args, "--json"], tmp_path)
        bad = await run([*args[:-1], "0"], tmp_path)
    assert human.exit_code == 0, human.output
    assert human.stdout == "booting\nasked 7\n"
    assert orjson.loads(as_json.stdout) == {"lines": ["booting", "asked 7"]}
    assert bad.exit_code == errors.USAGE


def test_every_command_takes_json_after_its_name() -> None:
    def leaves(command: click.Command, path: list[str]) -> list[tuple[str, click.Command]]:
        if isinstance(command, click.Group):
            return [
                leaf
                for name, sub in command.commands.items()
                for leaf in leaves(sub, [*path, name])
            ]
        return [(" ".join(path), command)]

    found = leaves(cli, [])
    assert len(found) > 50
    without = [
        name
        for name, command in found
        if not any("--json" in p.opts for p in command.params if isinstance(p, click.Option))
    ]
    assert without == []


async def test_json_after_a_command_that_prints_json_anyway(tmp_path: Path) -> None:
    result = await run(["events", "schema", "--json"], tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout.lstrip().startswith("{")
