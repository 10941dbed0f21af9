"""A gateway and a storage service in-process, on the test broker and the real Ceph cluster:
the fixture of the API tests of volumes and images."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from tests.integration.gateway.harness import Gateway, wait_until
from tests.support.pool import PoolAudit, audit_namespace

from virga_devstack.ceph import CephCluster
from virga_eventlog import EventWriter, KafkaSettings, ensure_topics, event_topic, virga_topics
from virga_events import Envelope, Event, new_event
from virga_runtime import ServiceRunner
from virga_storage.config import StorageConfig
from virga_storage.core.model import StorageState
from virga_storage.drivers.rbd import RbdDriver
from virga_storage.service import storage_runner

IMAGE = b"virga test image " * 65536
"""A 1 MiB raw image (a clone of it needs 1 GiB at least)."""


@dataclass
class Cloud:
    """The gateway (HTTP client included), the storage service, and the test's pool view."""

    gateway: Gateway
    storage: ServiceRunner[StorageState] | None
    """None when the storage service runs as its own process."""
    ceph: RbdDriver
    bootstrap: str
    _feeder: EventWriter | None = None

    @property
    def namespace(self) -> str:
        return self.gateway.namespace

    async def wait_volume(self, token: str, volume_id: str, *statuses: str) -> dict[str, Any]:
        """The volume once its status is one of `statuses`."""
        found: dict[str, Any] = {}

        def reached() -> bool:
            assert self.gateway.runner is not None
            volume = self.gateway.runner.state.volumes.get(volume_id)
            return volume is not None and volume.listed and _status(self, volume) in statuses

        await wait_until(reached, 30)
        reply = await self.gateway.call("GET", f"/v1/volumes/{volume_id}", token=token)
        assert reply.status == 200, reply.body
        found = reply.body
        return found

    async def feed(
        self, service: str, aggregate_id: str, event: Event, tenant_id: str | None
    ) -> Envelope:
        """Append one fact as `service` would (a scheduler or compute agent of the test)."""
        if self._feeder is None:
            settings = KafkaSettings(bootstrap_servers=self.bootstrap, namespace=self.namespace)
            self._feeder = EventWriter(settings, transactional_id=f"{self.namespace}-h1-feeder")
            await self._feeder.start()
        envelope = new_event(
            event, aggregate_id=aggregate_id, tenant_id=tenant_id, producer=service
        )
        async with self._feeder.transaction() as txn:
            await txn.append(event_topic(service, self.namespace), envelope)
        return envelope

    async def close(self) -> None:
        if self._feeder is not None:
            await self._feeder.stop()

    async def audit(self) -> PoolAudit:
        return await audit_namespace(self.bootstrap, self.namespace, self.ceph, shared=True)


async def upload(
    cloud: Cloud, token: str, data: bytes, expect: int = 201, **query: str
) -> dict[str, Any]:
    params = "&".join(f"{k}={v}" for k, v in {"name": "debian", **query}.items())
    reply = await cloud.gateway.call(
        "POST",
        f"/v1/images?{params}",
        token=token,
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert reply.status == expect, reply.body
    body: dict[str, Any] = reply.body
    return body


async def create_volume(cloud: Cloud, token: str, **fields: Any) -> dict[str, Any]:
    reply = await cloud.gateway.call(
        "POST", "/v1/volumes", token=token, json={"name": "data", "size_gb": 1, **fields}
    )
    assert reply.status == 202, reply.body
    created = await cloud.wait_volume(token, reply.body["id"], "available", "error")
    assert created["status"] == "available", created
    return created


async def wait_gone(cloud: Cloud, token: str, path: str) -> None:
    last = 200
    for _ in range(300):
        last = (await cloud.gateway.call("GET", path, token=token)).status
        if last == 404:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} still answers {last}")


def _status(cloud: Cloud, volume: Any) -> str:
    from virga_gateway.volumes.model import volume_status

    assert cloud.gateway.runner is not None
    return volume_status(volume, cloud.gateway.runner.state.instances)


@contextlib.asynccontextmanager
async def running_cloud(
    bootstrap: str, cluster: CephCluster, gateway_max_bytes: int | None = None, **storage: Any
) -> AsyncIterator[Cloud]:
    namespace = f"st{uuid.uuid4().hex[:8]}"
    settings = KafkaSettings(bootstrap_servers=bootstrap, namespace=namespace)
    await ensure_topics(settings, virga_topics(partitions=2, namespace=namespace))
    config = StorageConfig(
        ceph_conf=str(cluster.conf_file),
        ceph_keyring=str(cluster.keyring),
        ceph_pool=cluster.pool,
        namespace=namespace,
        http_port=0,
        **storage,
    )
    driver = RbdDriver(
        cluster.conf_file, cluster.keyring, cluster.pool, op_timeout=config.ceph_op_timeout_seconds
    )
    await driver.connect()
    ceph = RbdDriver(cluster.conf_file, cluster.keyring, cluster.pool)
    await ceph.connect()
    runner = storage_runner(config, driver, settings)
    await runner.start()
    serving = asyncio.create_task(runner.serve())
    gateway: Gateway | None = None
    try:
        await asyncio.wait_for(runner.ready.wait(), 30)
        gateway = await Gateway.create(
            bootstrap,
            namespace=namespace,
            storage_url=f"http://127.0.0.1:{runner.http_port}",
            image_max_bytes=gateway_max_bytes or config.image_max_bytes,
        )
        cloud = Cloud(gateway, runner, ceph, bootstrap)
        try:
            yield cloud
        finally:
            await cloud.close()
    finally:
        if gateway is not None:
            await gateway.close()
        runner.request_stop()
        await serving
        await runner.close()
        await driver.close()
        await ceph.close()
