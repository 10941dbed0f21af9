"""A small typed client of Virga's HTTP API for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp

from virga_events.catalog.quotas import QUOTA_RESOURCES, UNLIMITED


class ApiError(AssertionError):
    """A response the test did not expect; carries the status and the problem body."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class Api:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self.session = session
        self.base_url = base_url
        self.token = token

    def as_token(self, token: str) -> Api:
        return Api(self.session, self.base_url, token)

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        expect: Iterable[int] = (200, 201, 202),
        headers: dict[str, str] | None = None,
    ) -> Any:
        all_headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        async with self.session.request(
            method, f"{self.base_url}{path}", json=body, headers=all_headers
        ) as response:
            payload: Any = (
                await response.json(content_type=None) if response.content_length != 0 else None
            )
            if response.status not in set(expect):
                raise ApiError(response.status, payload)
            return payload

    async def create_tenant(self, name: str) -> tuple[str, str]:
        """Create a tenant and a token for it (needs an admin token); returns (id, token).

        Its quotas are lifted (every limit -1): the stacks' tests make more than the defaults.
        """
        tenant = await self.call("POST", "/v1/tenants", {"name": name})
        unlimited = dict.fromkeys(QUOTA_RESOURCES, UNLIMITED)
        await self.call("PUT", f"/v1/tenants/{tenant['id']}/quotas", unlimited)
        token = await self.call("POST", f"/v1/tenants/{tenant['id']}/tokens", {})
        return tenant["id"], token["token"]

    async def create_instance(self, name: str, flavor: str = "m1.tiny", **extra: Any) -> Any:
        return await self.call("POST", "/v1/instances", {"name": name, "flavor": flavor, **extra})

    async def instance(self, instance_id: str) -> Any:
        return await self.call("GET", f"/v1/instances/{instance_id}")

    async def wait_status(
        self, instance_ids: Iterable[str], statuses: set[str], seconds: float = 60.0
    ) -> list[Any]:
        """Poll until every instance has one of `statuses`; return their last views."""
        ids = list(instance_ids)
        deadline = time.monotonic() + seconds
        while True:
            views = await asyncio.gather(*(self.instance(i) for i in ids))
            if all(v["status"] in statuses for v in views):
                return list(views)
            if time.monotonic() > deadline:
                pending = {
                    v["id"]: (v["status"], v.get("fault"))
                    for v in views
                    if v["status"] not in statuses
                }
                raise TimeoutError(f"not {statuses} after {seconds} s: {pending}")
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def new_tenant(gateway_url: str, admin_token: str, prefix: str) -> AsyncIterator[Api]:
    """The API as a tenant made for the block (named `<prefix>-<random>`), on its own session."""
    async with aiohttp.ClientSession() as session:
        admin = Api(session, gateway_url, admin_token)
        _, token = await admin.create_tenant(f"{prefix}-{uuid.uuid4().hex[:6]}")
        yield admin.as_token(token)


async def until(
    api: Api, path: str, done: Callable[[Any], bool], seconds: float = 120, every: float = 0.3
) -> Any:
    """GET `path` until `done(view)`, every `every` s for at most `seconds`; a 404 is the
    view `None`."""
    deadline = time.monotonic() + seconds
    while True:
        view = await api.call("GET", path, expect=(200, 404))
        view = None if isinstance(view.get("status"), int) else view
        if done(view):
            return view
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path}: {view}")
        await asyncio.sleep(every)


async def upload_image(admin: Api, disk_file: Path, name: str = "virga-guest") -> Any:
    """Upload `disk_file` as the public image `name` (201), streamed; its view."""
    with disk_file.open("rb") as disk:
        async with admin.session.post(
            f"{admin.base_url}/v1/images",
            params={"name": name, "visibility": "public"},
            data=disk,
            headers={
                "Authorization": f"Bearer {admin.token}",
                "Content-Type": "application/octet-stream",
            },
        ) as response:
            body = await response.json()
            assert response.status == 201, body
            return body
