"""A resize that moves hosts through the real broker, on libvirt's test hypervisor.

The gateway, the scheduler and two compute agents whose drivers are libvirt, each host its
own private test hypervisor (`test:///<node file>`, as two libvirtd would be): the first
host (3 GiB) has no room for the new flavor (4 GiB), so the resize moves the instance to the
second. It ends RUNNING there with
the new flavor as that host's libvirt defines it, and the first host has no domain left.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.compute.test_driver_resize_move import NODE
from tests.integration.compute.test_migration_through_api import instance, until
from tests.integration.gateway.harness import Gateway, wait_until
from tests.support.kafka import serving

from virga_compute.config import ComputeConfig
from virga_compute.core.spec import DomainState
from virga_compute.drivers.domain_xml import DomainSettings, domain_name
from virga_compute.drivers.libvirt import LibvirtDriver
from virga_compute.service import definition as compute_definition
from virga_compute.service import runner_config as compute_runner_config
from virga_eventlog import ensure_topics, virga_topics
from virga_runtime import ServiceRunner
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.service import definition as scheduler_definition
from virga_scheduler.service import runner_config as scheduler_runner_config

pytestmark = pytest.mark.kafka

FIRST, SECOND = "lv-a", "lv-b"


@contextlib.asynccontextmanager
async def libvirt_agent(
    gateway: Gateway, host: str, root: Path, ram_mb: int = 8192
) -> AsyncIterator[LibvirtDriver]:
    node = root / f"{host}.xml"
    node.write_text(NODE.replace("8388608", str(ram_mb * 1024)))
    (root / host).mkdir()
    driver = LibvirtDriver(
        f"test://{node}",
        instances_path=str(root / host),
        settings=DomainSettings(domain_type="test"),
        grace_period=0,
    )
    config = ComputeConfig(
        host=host,
        rack="r1",
        zone="az1",
        namespace=gateway.namespace,
        heartbeat_seconds=2,
        power_sync_seconds=1,
    )
    async with driver:
        runner = ServiceRunner(
            compute_definition(config, driver), gateway.settings, compute_runner_config(config)
        )
        async with serving(runner):
            yield driver
        for domain in await driver.list_instances():
            await driver.destroy(domain.instance_id)


async def size(driver: LibvirtDriver, instance_id: str) -> tuple[int, int]:
    def read(conn: Any) -> tuple[int, int]:
        root = ET.fromstring(conn.lookupByName(domain_name(instance_id)).XMLDesc(0))
        return int(root.findtext("vcpu") or 0), int(root.findtext("memory") or 0) // 1024

    return await driver._call(read)


async def test_a_resize_moves_a_guest_between_two_libvirt_hosts(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    gateway = await Gateway.create(kafka_bootstrap)
    try:
        namespace = gateway.namespace
        await ensure_topics(gateway.settings, virga_topics(3, namespace))
        config = SchedulerConfig(namespace=namespace, tick_seconds=1)
        scheduler = ServiceRunner(
            scheduler_definition(config), gateway.settings, scheduler_runner_config(config)
        )
        async with serving(scheduler), libvirt_agent(gateway, FIRST, tmp_path, 3072) as first:
            await wait_until(lambda: set(scheduler.state.hosts) == {FIRST}, 60)
            _, token = await gateway.tenant()
            instance_id = (await gateway.instance(token, flavor="m1.small"))["id"]
            views: list[dict[str, Any]] = []

            async def status_is(status: str, flavor: str | None = None) -> bool:
                views.append(await instance(gateway, instance_id, token))
                seen = views[-1]
                named = seen["flavor"]["name"] if seen["flavor"] else None
                return seen["status"] == status and (flavor is None or named == flavor)

            await until(lambda: status_is("RUNNING"), 60, views)
            assert views[-1]["host"] == FIRST
            async with libvirt_agent(gateway, SECOND, tmp_path) as second:
                await wait_until(lambda: set(scheduler.state.hosts) == {FIRST, SECOND}, 60)
                asked = await gateway.call(
                    "POST",
                    f"/v1/instances/{instance_id}/actions",
                    token=token,
                    json={"action": "resize", "flavor": "m1.medium"},
                )
                assert asked.status == 202, asked.body
                await until(lambda: status_is("RUNNING", "m1.medium"), 90, views)
                assert views[-1]["host"] == SECOND
                assert (await second.get_info(instance_id)).state is DomainState.RUNNING
                assert await size(second, instance_id) == (2, 4096)
                await wait_until(lambda: scheduler.state.claims.get(instance_id) is not None, 10)

                async def gone() -> bool:
                    info = await first.get_info(instance_id)
                    return info.state is DomainState.MISSING

                await until(gone, 30, views)
                held = scheduler.state.claims.get(instance_id)
                assert held is not None
                assert (held.host, held.ram_mb) == (SECOND, 4096)
    finally:
        await gateway.close()
