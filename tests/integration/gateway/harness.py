"""A gateway on a real broker for tests: its runner, its app on a free port, a small client."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict
from tests.support.kafka import stop_serving

from virga_eventlog import EventWriter, KafkaSettings, ensure_topics, event_topic, virga_topics
from virga_events import Envelope, Event, new_event
from virga_events.catalog.quotas import QUOTA_RESOURCES, UNLIMITED
from virga_gateway.app import build_app
from virga_gateway.config import GatewayConfig
from virga_gateway.runner import GatewayRunner
from virga_gateway.service import gateway_runner
from virga_runtime import RunnerConfig

ADMIN_TOKEN = "virga_test-admin-token-0123456789abcdefghijklmnopqrstuv"
TOKEN_SECRET = b"a test secret, 32 bytes or more, for HMAC-SHA256"


@dataclass
class Reply:
    status: int
    body: Any
    headers: CIMultiDict[str]

    @property
    def problem_fields(self) -> list[str]:
        return [error["field"] for error in self.body.get("errors", [])]


async def wait_until(predicate: Callable[[], bool], seconds: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)


@dataclass
class Gateway:
    """One gateway process, in-process: start, talk to it over HTTP, restart it, stop it."""

    settings: KafkaSettings
    config: GatewayConfig
    runner: GatewayRunner | None = None
    client: TestClient[web.Request, web.Application] | None = None
    _serving: asyncio.Task[None] | None = None
    _feeder: EventWriter | None = None

    @classmethod
    async def create(cls, bootstrap: str, namespace: str | None = None, **config: Any) -> Gateway:
        namespace = namespace or f"t{uuid.uuid4().hex[:8]}"
        settings = KafkaSettings(bootstrap_servers=bootstrap, namespace=namespace)
        wanted = {
            event_topic("gateway", namespace),
            event_topic("scheduler", namespace),
            event_topic("compute", namespace),
            event_topic("network", namespace),
            event_topic("storage", namespace),
            f"{namespace}.snapshots.gateway",
            f"{namespace}.deadletter.gateway",
        }
        specs = [s for s in virga_topics(partitions=3, namespace=namespace) if s.name in wanted]
        await ensure_topics(settings, specs)
        # On a loaded test machine a commit can take seconds: only tests of the log's absence
        # (test_log_outage.py) want the production write timeout, or a shorter one.
        config.setdefault("write_timeout_seconds", 30.0)
        gateway = cls(settings, GatewayConfig(ADMIN_TOKEN, TOKEN_SECRET, **config))
        await gateway.start()
        return gateway

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    async def start(self) -> None:
        runner = self.runner = gateway_runner(self.config, self.settings, RunnerConfig())
        await runner.start()
        self._serving = asyncio.create_task(runner.serve())
        self.client = TestClient(TestServer(build_app(runner, self.config)))
        await self.client.start_server()
        await wait_until(self.ready)

    def ready(self) -> bool:
        assert self.runner is not None
        return self.runner.ready.is_set() and bool(self.runner.state.tokens)

    async def stop(self, *, snapshot: bool = True) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self.runner is not None:
            assert self._serving is not None
            await stop_serving(self.runner, self._serving, snapshot=snapshot)
            self.runner = None

    async def restart(self, *, snapshot: bool = True) -> None:
        await self.stop(snapshot=snapshot)
        await self.start()

    async def close(self) -> None:
        await self.stop()
        if self._feeder is not None:
            await self._feeder.stop()

    # -- HTTP -------------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = ADMIN_TOKEN,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        assert self.client is not None
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if json is not None:
            data = orjson.dumps(json)
            sent.setdefault("Content-Type", "application/json")
        # aiohttp wants big bodies as a stream, not bytes.
        payload = io.BytesIO(data) if data is not None and len(data) > 512 * 1024 else data
        async with self.client.request(method, path, data=payload, headers=sent) as response:
            raw = await response.read()
            body = orjson.loads(raw) if raw and "json" in response.content_type else raw
            return Reply(response.status, body, CIMultiDict(response.headers))

    async def tenant(
        self, name: str | None = None, quotas: dict[str, int | None] | None = None
    ) -> tuple[str, str]:
        """A new tenant and a token for it: (tenant id, token). Its limits are `quotas` (the
        others unlimited), so tests that make many resources are not refused for it."""
        created = await self.call("POST", "/v1/tenants", json={"name": name or uuid.uuid4().hex})
        assert created.status == 201, created.body
        limits = {**dict.fromkeys(QUOTA_RESOURCES, UNLIMITED), **(quotas or {})}
        quota = await self.call("PUT", f"/v1/tenants/{created.body['id']}/quotas", json=limits)
        assert quota.status == 200, quota.body
        issued = await self.call("POST", f"/v1/tenants/{created.body['id']}/tokens")
        assert issued.status == 201, issued.body
        return created.body["id"], issued.body["token"]

    async def instance(self, token: str, name: str = "web-1", **fields: Any) -> dict[str, Any]:
        reply = await self.call(
            "POST",
            "/v1/instances",
            token=token,
            json={"name": name, "flavor": "m1.small", **fields},
        )
        assert reply.status == 202, reply.body
        body: dict[str, Any] = reply.body
        return body

    # -- other services' facts ----------------------------------------------------------------

    async def feed(self, service: str, facts: Iterable[tuple[str, Event]]) -> list[Envelope]:
        """Append (aggregate id, event) facts as `service` would, in one transaction."""
        if self._feeder is None:
            self._feeder = EventWriter(self.settings, transactional_id=f"{self.namespace}-feeder")
            await self._feeder.start()
        envelopes = [
            new_event(event, aggregate_id=aggregate, tenant_id=None, producer=service)
            for aggregate, event in facts
        ]
        async with self._feeder.transaction() as txn:
            for envelope in envelopes:
                await txn.append(event_topic(service, self.namespace), envelope)
        return envelopes
