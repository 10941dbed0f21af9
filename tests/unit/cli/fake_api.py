"""A fake Virga API for the CLI's unit tests: canned answers, and a record of what came in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner, Result

from virga_cli.main import cli

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeApi:
    url: str
    requests: list[Seen] = field(default_factory=list)


def problem(status: int, title: str, detail: str, **extra: Any) -> web.Response:
    body = {"type": "https://virga.dev/problems/x", "title": title, "status": status}
    return web.json_response(
        {**body, "detail": detail, **extra}, status=status, content_type="application/problem+json"
    )


@asynccontextmanager
async def fake_api(routes: Mapping[tuple[str, str], Handler]) -> AsyncIterator[FakeApi]:
    """Serve `routes` ((method, path pattern) → handler) on a free local port."""
    app = web.Application(client_max_size=64 << 20)
    api = FakeApi(url="")

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        api.requests.append(
            Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        return await handler(request)

    app.middlewares.append(record)
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    api.url = str(server.make_url("")).rstrip("/")
    try:
        yield api
    finally:
        await server.close()


async def run(
    args: list[str], config_home: Path, *, token: str | None = "t0ken", stdin: str | None = None
) -> Result:
    """Invoke the CLI in a thread, so the fake API keeps serving on this loop meanwhile."""
    env = {"XDG_CONFIG_HOME": str(config_home), "VIRGA_TOKEN": token, "VIRGA_API_URL": None}
    return await asyncio.to_thread(CliRunner().invoke, cli, args, env=env, input=stdin)
