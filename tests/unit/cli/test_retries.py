"""The client sends every write with an Idempotency-Key, and retries a 503 or an unanswered
request a bounded number of times with that same key, waiting what Retry-After says."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from tests.unit.cli.fake_api import Handler, fake_api, problem, run

from virga_cli import errors
from virga_cli.client import BACKOFF_SECONDS, MAX_WAIT_SECONDS, RETRIES, Client


def answers(*statuses: int, retry_after: str | None = "1") -> Handler:
    """A handler answering `statuses` in turn (503s with Retry-After), then 202 forever."""
    pending = list(statuses)

    async def handler(request: web.Request) -> web.Response:
        status = pending.pop(0) if pending else 202
        if status == 202:
            return web.json_response({"id": "i-1"}, status=202)
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        reply = problem(status, "Service unavailable", "the event log did not confirm")
        reply.headers.update(headers)
        return reply

    return handler


def slept() -> tuple[list[float], Client]:
    waits: list[float] = []
    return waits, Client("http://unused", "t0ken", sleep=waits.append)


async def test_a_503_write_is_retried_with_the_same_key_after_retry_after() -> None:
    async with fake_api({("POST", "/v1/instances"): answers(503, 503)}) as api:
        waits, client = slept()
        client.api = api.url
        answer = await asyncio.to_thread(client.post, "/v1/instances", {"name": "web"})
    assert answer == {"id": "i-1"}
    keys = [seen.headers.get("Idempotency-Key") for seen in api.requests]
    assert len(keys) == 3
    assert keys[0] is not None
    assert len(set(keys)) == 1
    assert waits == [1.0, 1.0]


async def test_retries_are_bounded_and_the_last_failure_is_shown() -> None:
    async with fake_api({("POST", "/v1/networks"): answers(*[503] * 10, retry_after="60")}) as api:
        waits, client = slept()
        client.api = api.url
        with pytest.raises(errors.ApiProblem) as failure:
            await asyncio.to_thread(client.post, "/v1/networks", {"name": "n"})
    assert failure.value.status == 503
    assert len(api.requests) == 1 + RETRIES
    assert waits == [MAX_WAIT_SECONDS] * RETRIES  # Retry-After, within bounds


async def test_a_503_without_retry_after_backs_off() -> None:
    async with fake_api({("GET", "/v1/volumes"): answers(503, 503, retry_after=None)}) as api:
        waits, client = slept()
        client.api = api.url
        await asyncio.to_thread(client.get, "/v1/volumes")
    assert waits == [BACKOFF_SECONDS, BACKOFF_SECONDS * 2]
    assert "Idempotency-Key" not in api.requests[0].headers  # reads carry none


async def test_an_unanswered_request_is_retried_then_unreachable() -> None:
    async with fake_api({}) as api:
        url = api.url  # nothing listens there any more
    waits, client = slept()
    client.api = url
    with pytest.raises(errors.CliFailure) as failure:
        await asyncio.to_thread(client.post, "/v1/instances", {"name": "web"})
    assert failure.value.exit_code == errors.UNREACHABLE
    assert waits == [BACKOFF_SECONDS * 2**n for n in range(RETRIES)]


async def test_a_streamed_upload_is_sent_once() -> None:
    async with fake_api({("POST", "/v1/images"): answers(503)}) as api:
        waits, client = slept()
        client.api = api.url

        def chunks() -> Iterator[bytes]:
            yield b"qcow"

        with pytest.raises(errors.ApiProblem):
            await asyncio.to_thread(client.request, "POST", "/v1/images", data=chunks())
    assert len(api.requests) == 1
    assert "Idempotency-Key" in api.requests[0].headers
    assert waits == []


async def test_a_caller_s_own_key_is_kept() -> None:
    async with fake_api({("POST", "/v1/instances"): answers(503)}) as api:
        _, client = slept()
        client.api = api.url
        await asyncio.to_thread(
            client.request, "POST", "/v1/instances", {}, headers={"Idempotency-Key": "mine"}
        )
    assert [seen.headers["Idempotency-Key"] for seen in api.requests] == ["mine", "mine"]


async def test_a_delete_in_doubt_that_finds_the_resource_gone_succeeded() -> None:
    async with fake_api({("DELETE", "/v1/volumes/v-1"): answers(503, 404)}) as api:
        _, client = slept()
        client.api = api.url
        assert await asyncio.to_thread(client.delete, "/v1/volumes/v-1") is None
    async with fake_api({("DELETE", "/v1/volumes/v-1"): answers(404)}) as api:
        _, client = slept()
        client.api = api.url
        with pytest.raises(errors.ApiProblem):
            await asyncio.to_thread(client.delete, "/v1/volumes/v-1")


async def test_every_cli_write_sends_an_idempotency_key(tmp_path: Path) -> None:
    async def created(request: web.Request) -> web.Response:
        return web.json_response({"id": "n-1", "name": "n", "cidr": "10.0.0.0/24"}, status=201)

    async with fake_api({("POST", "/v1/networks"): created}) as api:
        result = await run(
            ["--api", api.url, "network", "create", "n", "--cidr", "10.0.0.0/24"], tmp_path
        )
    assert result.exit_code == 0, result.stderr
    (seen,) = [s for s in api.requests if s.method == "POST"]
    assert seen.headers["Idempotency-Key"].startswith("virga-cli-")
