"""Boot volumes, ports and attachments through the running agent: real Kafka, libvirt's test
hypervisor or the in-memory driver, with the storage and network services' events written by
the test as those services would write them."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from tests.integration.compute.agent_harness import (
    HOST,
    Agent,
    Cloud,
    Hypervisor,
    LibvirtHypervisor,
    request_event,
    running_agent,
    wait_until,
)

from virga_compute.ceph_access import CephSettings
from virga_compute.core.spec import CephMonitor, DomainState
from virga_compute.drivers.domain_xml import domain_name
from virga_events import Envelope, Event
from virga_events.catalog.attachments import VolumeAttachRequested, VolumeDetachRequested
from virga_events.catalog.network import PortBindingFailed, PortBound, instance_port_id
from virga_events.catalog.storage import VolumeCreated, VolumeFailed

pytestmark = pytest.mark.kafka

SECRET = "5c2e5e0e-6c5e-4a52-9a1f-0e7f1f6f2a10"
CEPH = CephSettings(monitors=(CephMonitor("127.0.0.1", 6789),), pool="vms", secret_uuid=SECRET)
MAC, TAP = "fa:16:3e:12:34:56", "vh2tap0"
VOLUME = "5e1d0c6a-7a55-4f7e-9d1c-2b3a4c5d6e7f"


async def storage(cloud: Cloud, event: Event, volume_id: str) -> Envelope:
    return await cloud.write("storage", request_event(event, volume_id, "storage"))


async def boot_volume_made(cloud: Cloud, instance_id: str) -> Envelope:
    event = VolumeCreated(name="boot", size_gb=1, parent="image:img-1", instance_id=instance_id)
    return await storage(cloud, event, instance_id)


async def network(cloud: Cloud, event: Event, instance_id: str) -> Envelope:
    envelope = request_event(event, instance_port_id(instance_id), "network@hv-1")
    return await cloud.write("network", envelope)


async def api(cloud: Cloud, event: Event, volume_id: str) -> Envelope:
    return await cloud.write("gateway", request_event(event, volume_id, "gateway"))


async def still_waiting(agent: Agent, hypervisor: Hypervisor, inputs: int) -> None:
    """Nothing is built while a prerequisite is missing: the agent has decided on all `inputs`
    events the test wrote (its `events_handled` counter moves only once a batch's effects ran
    and its transaction committed), so a spawn decided with the placement would have run."""
    await wait_until(lambda: agent.runner.metrics.value("events_handled") >= inputs)
    assert await hypervisor.state("i-1") is DomainState.MISSING


async def test_an_instance_from_an_image_boots_from_its_volume_only_once_it_exists(
    cloud: Cloud, any_host: Hypervisor
) -> None:
    async with running_agent(cloud, any_host, ceph=CEPH) as agent:
        placed = await cloud.schedule("i-1", image="img-1")
        await wait_until(lambda: "i-1" in agent.state.instances)
        await still_waiting(agent, any_host, inputs=1)
        made = await boot_volume_made(cloud, "i-1")
        await cloud.wait_for("InstanceStarted", "i-1")
        [started] = cloud.events("InstanceStarted", "i-1")
        assert started.causation_id == made.event_id
        assert placed.event_id != made.event_id
        assert await any_host.state("i-1") is DomainState.RUNNING
        if isinstance(any_host, LibvirtHypervisor):
            disk = _disk(any_host, "i-1", "vda")
            assert disk.get("type") == "network"
            source = disk.find("source")
            assert source is not None
            assert (source.get("protocol"), source.get("name")) == ("rbd", "vms/volume-i-1")
            assert disk.find("auth/secret").get("uuid") == SECRET  # type: ignore[union-attr]


async def test_a_failed_boot_volume_fails_the_instance_for_good_and_builds_nothing(
    cloud: Cloud, any_host: Hypervisor
) -> None:
    async with running_agent(cloud, any_host, ceph=CEPH):
        await storage(cloud, VolumeFailed(operation="create", reason="pool full"), "i-1")
        await cloud.schedule("i-1", image="img-1")
        await cloud.wait_for("InstanceFailed", "i-1")
        [failed] = cloud.events("InstanceFailed", "i-1")
        assert (failed.payload.phase, failed.payload.reason) == (
            "volume",
            "boot volume failed: pool full",
        )
        assert await any_host.state("i-1") is DomainState.MISSING


async def test_an_instance_with_a_network_gets_its_bound_ports_mac_and_tap(
    cloud: Cloud, libvirt_host: LibvirtHypervisor
) -> None:
    async with running_agent(cloud, libvirt_host) as agent:
        await cloud.schedule("i-1", network="n-1")
        other_host = PortBound(host="hv-2", network_id="n-1", tap=TAP, mac=MAC, ips=())
        await network(cloud, other_host, "i-1")
        await wait_until(lambda: "i-1" in agent.state.instances)
        await still_waiting(agent, libvirt_host, inputs=2)
        bound = PortBound(host=HOST, network_id="n-1", tap=TAP, mac=MAC, ips=("10.0.0.5",))
        await network(cloud, bound, "i-1")
        await cloud.wait_for("InstanceStarted", "i-1")
        dom = libvirt_host.side.lookupByName(domain_name("i-1"))
        [interface] = ET.fromstring(dom.XMLDesc(0)).findall("devices/interface")
        assert interface.get("type") == "ethernet"
        assert interface.find("mac").get("address") == MAC  # type: ignore[union-attr]
        target = interface.find("target")
        assert target is not None
        assert (target.get("dev"), target.get("managed")) == (TAP, "no")


async def test_a_port_binding_failure_on_this_host_fails_the_instance(
    cloud: Cloud, memory_host: Hypervisor
) -> None:
    async with running_agent(cloud, memory_host):
        await cloud.schedule("i-1", network="n-1")
        await network(cloud, PortBindingFailed(host=HOST, reason="no such bridge"), "i-1")
        await cloud.wait_for("InstanceFailed", "i-1")
        [failed] = cloud.events("InstanceFailed", "i-1")
        assert (failed.payload.phase, failed.payload.reason) == (
            "port",
            "port failed: no such bridge",
        )


async def test_a_volume_made_while_the_agent_was_down_boots_the_instance_after_restart(
    cloud: Cloud, memory_host: Hypervisor
) -> None:
    async with running_agent(cloud, memory_host, ceph=CEPH) as agent:
        await cloud.schedule("i-1", image="img-1")
        await wait_until(lambda: "i-1" in agent.state.instances)
    await boot_volume_made(cloud, "i-1")
    async with running_agent(cloud, memory_host, ceph=CEPH):
        await cloud.wait_for("InstanceStarted", "i-1")
    assert await memory_host.state("i-1") is DomainState.RUNNING
    assert len(cloud.events("InstanceStarted", "i-1")) == 1


async def test_a_stopped_instance_takes_and_gives_back_a_volume_in_its_definition(
    cloud: Cloud, libvirt_host: LibvirtHypervisor
) -> None:
    async with running_agent(cloud, libvirt_host, ceph=CEPH):
        await cloud.schedule("i-1", image="img-1")
        await boot_volume_made(cloud, "i-1")
        await cloud.wait_for("InstanceStarted", "i-1")
        # The test hypervisor has no hot-plug: a running instance refuses, saying why.
        await api(cloud, VolumeAttachRequested(instance_id="i-1"), VOLUME)
        await cloud.wait_for("VolumeAttachmentFailed", VOLUME)
        await cloud.act("i-1", "stop")
        await cloud.wait_for("InstanceStopped", "i-1")
        await api(cloud, VolumeAttachRequested(instance_id="i-1"), VOLUME)
        await cloud.wait_for("VolumeAttached", VOLUME)
        [attached] = cloud.events("VolumeAttached", VOLUME)
        assert (attached.payload.instance_id, attached.payload.target_dev) == ("i-1", "vdb")
        disk = _disk(libvirt_host, "i-1", "vdb")
        assert disk.find("source").get("name") == f"vms/volume-{VOLUME}"  # type: ignore[union-attr]
        assert disk.findtext("serial") == VOLUME[:20]
        await api(cloud, VolumeDetachRequested(instance_id="i-1"), VOLUME)
        await cloud.wait_for("VolumeDetached", VOLUME)
        assert "vdb" not in _targets(libvirt_host, "i-1")
        await cloud.act("i-1", "start")
        await cloud.wait_for("InstanceStarted", "i-1", count=2)
        await api(cloud, VolumeAttachRequested(instance_id="i-1"), "v-other")
        await cloud.wait_for("VolumeAttachmentFailed", "v-other")
        await cloud.act("i-1", "stop")
        await cloud.wait_for("InstanceStopped", "i-1", count=2)
        await api(cloud, VolumeAttachRequested(instance_id="i-1"), VOLUME)
        await cloud.wait_for("VolumeAttached", VOLUME, count=2)
        await cloud.delete("i-1")
        await cloud.wait_for("VolumeDetached", VOLUME, count=2)
    assert [e.type for e in cloud.compute if e.aggregate_id == VOLUME] == [
        "VolumeAttachmentFailed",
        "VolumeAttached",
        "VolumeDetached",
        "VolumeAttached",
        "VolumeDetached",  # with the instance's deletion
    ]
    deleted = cloud.events("InstanceDeleted", "i-1")
    assert len(deleted) == 1


def _targets(hypervisor: LibvirtHypervisor, instance_id: str) -> list[str]:
    dom = hypervisor.side.lookupByName(domain_name(instance_id))
    root = ET.fromstring(dom.XMLDesc(0))
    return [t.get("dev", "") for t in root.findall("devices/disk/target")]


def _disk(hypervisor: LibvirtHypervisor, instance_id: str, target: str) -> ET.Element:
    dom = hypervisor.side.lookupByName(domain_name(instance_id))
    for disk in ET.fromstring(dom.XMLDesc(0)).findall("devices/disk"):
        found = disk.find("target")
        if found is not None and found.get("dev") == target:
            return disk
    raise AssertionError(f"no disk {target} in {instance_id}")
