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
from virga_eventlog import KafkaSettings, ensure_topics, virga_topics
from virga_runtime import ServiceRunner
from virga_storage.config import StorageConfig
from virga_storage.rbd_driver import RbdDriver
from virga_storage.service import storage_runner
from virga_storage.state import StorageState


@dataclass
class Cloud:
    """The gateway (HTTP client included), the storage service, and the test's pool view."""

    gateway: Gateway
    storage: ServiceRunner[StorageState]
    ceph: RbdDriver
    bootstrap: str

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

    async def audit(self) -> PoolAudit:
        return await audit_namespace(self.bootstrap, self.namespace, self.ceph, shared=True)


def _status(cloud: Cloud, volume: Any) -> str:
    from virga_gateway.fold_storage import volume_status

    assert cloud.gateway.runner is not None
    return volume_status(volume, cloud.gateway.runner.state.instances)


@contextlib.asynccontextmanager
async def running_cloud(
    bootstrap: str, cluster: CephCluster, **storage: Any
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
    driver = RbdDriver(cluster.conf_file, cluster.keyring, cluster.pool)
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
            image_max_bytes=config.image_max_bytes,
        )
        yield Cloud(gateway, runner, ceph, bootstrap)
    finally:
        if gateway is not None:
            await gateway.close()
        runner.request_stop()
        await serving
        await runner.close()
        await driver.close()
        await ceph.close()
