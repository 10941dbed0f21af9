"""Volume attach and detach on a live TCG guest through the compute agent, next to the same
hot-plug asked of libvirt directly, in the same run on the same guest and volumes.

Usage: python bench/attach_bench.py [--bootstrap 127.0.0.1:9092] [--ceph-port 6789] [--rounds 10]

The agent runs in the bench's process on qemu:///system (libvirtd from the devstack), with the
local Ceph cluster (cephx) and the busybox guest of `virga_devstack.guest`; its boot volume and
`--rounds` data volumes are blank RBD images. Through the agent, one round is
`VolumeAttachRequested` written to `<ns>.api` until its `VolumeAttached` is read back from
`<ns>.compute`, then the same for the detach: decide, hot-plug (or unplug, waiting for the
guest to let go), and the transaction of the outcome. Baseline: `attachDeviceFlags` and
`detachDeviceFlags` of the same disk XML on the same domain, the detach polled until the disk
is gone from the live XML.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import libvirt
import rados
import rbd
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.kafka import following

import virga_events.catalog  # noqa: F401  (registers the event types)
from virga_compute.ceph_access import settings_from_env
from virga_compute.config import ComputeConfig
from virga_compute.core.attach import volume_disk
from virga_compute.core.spec import DirectKernelBoot
from virga_compute.drivers.domain_xml import DomainSettings, disk_xml, domain_name
from virga_compute.drivers.libvirt import LibvirtDriver
from virga_compute.service import definition, runner_config
from virga_devstack import libvirt as libvirt_daemon
from virga_devstack.ceph import CephCluster
from virga_devstack.guest import DISKS_PREFIX, ensure_guest
from virga_eventlog import KafkaSettings, ensure_topics, event_topic, virga_topics
from virga_events import Envelope, Event, encode, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.attachments import VolumeAttachRequested, VolumeDetachRequested
from virga_events.catalog.scheduler import InstanceScheduled
from virga_events.catalog.storage import VolumeCreated
from virga_runtime import ServiceRunner

URI = "qemu:///system"
HOST = "bench-host"


def images(cluster: CephCluster, create: list[str], remove: list[str]) -> None:
    keyring = {"keyring": str(cluster.keyring)}
    with (
        rados.Rados(conffile=str(cluster.conf_file), conf=keyring) as client,
        client.open_ioctx(cluster.pool) as ioctx,
    ):
        for name in create:
            rbd.RBD().create(ioctx, name, 64 << 20)
        for name in remove:
            with contextlib.suppress(rbd.ImageNotFound):
                rbd.RBD().remove(ioctx, name)


async def wait_for(events: list[Envelope], type_: str, aggregate: str, count: int = 1) -> None:
    deadline = time.monotonic() + 120
    while sum(1 for e in events if e.type == type_ and e.aggregate_id == aggregate) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {type_} for {aggregate}")
        await asyncio.sleep(0.005)


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{name:<34} p50 {statistics.median(values) * 1000:7.0f} ms   p95 {p95 * 1000:7.0f} ms"


async def main(args: argparse.Namespace) -> None:
    started_daemon = libvirt_daemon.start()
    cluster = CephCluster(args.ceph_port)
    cluster.start()  # a cluster already running on that port is used as it is
    guest = ensure_guest()
    ceph = settings_from_env({"VIRGA_CEPH_CONF": str(cluster.conf_file)})
    assert ceph is not None
    namespace = f"abench{uuid.uuid4().hex[:6]}"
    settings = KafkaSettings(bootstrap_servers=args.bootstrap, namespace=namespace)
    await ensure_topics(settings, virga_topics(partitions=2, namespace=namespace))
    instance_id = f"abench-{uuid.uuid4().hex[:8]}"
    volumes = [str(uuid.uuid4()) for _ in range(args.rounds)]
    names = [f"volume-{v}" for v in [instance_id, *volumes]]
    await asyncio.to_thread(images, cluster, names, [])
    boot = DirectKernelBoot(str(guest.kernel), str(guest.initrd), guest.cmdline)
    config = ComputeConfig(host=HOST, namespace=namespace, ceph=ceph, direct_boot=boot)
    console = Path(tempfile.mkdtemp(prefix="attach-bench-"))
    driver = LibvirtDriver(
        URI,
        instances_path=str(console),
        settings=DomainSettings(domain_type="qemu", console_log_dir=str(console)),
        ceph_secret=ceph.secret(),
    )
    await driver.connect()
    runner: ServiceRunner[Any] = ServiceRunner(
        definition(config, driver), settings, runner_config(config)
    )
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, enable_idempotence=True)
    await producer.start()
    await runner.start()
    serving = asyncio.create_task(runner.serve())

    async def write(service: str, event: Event, aggregate: str) -> None:
        envelope = new_event(event, aggregate_id=aggregate, tenant_id="bench", producer="bench")
        await producer.send_and_wait(
            event_topic(service, namespace), encode(envelope), key=aggregate.encode()
        )

    through_agent: list[float] = []
    attach_agent: list[float] = []
    detach_agent: list[float] = []
    direct: list[float] = []
    try:
        async with following(settings, event_topic("compute", namespace), "bench") as events:
            flavor = Flavor(name="bench", vcpus=1, ram_mb=256, disk_gb=1)
            placed = InstanceScheduled(
                host=HOST, rack="r", zone="z", attempt=1, name="bench", flavor=flavor, image="i"
            )
            await write("scheduler", placed, instance_id)
            made = VolumeCreated(name="boot", size_gb=1, instance_id=instance_id)
            await write("storage", made, instance_id)
            await wait_for(events, "InstanceStarted", instance_id)
            log = console / f"{domain_name(instance_id)}.log"
            while True:  # the guest's kernel answers hot-unplug once it prints its disks
                if DISKS_PREFIX in (log.read_text(errors="replace") if log.exists() else ""):
                    break
                await asyncio.sleep(0.1)

            for volume_id in volumes:
                began = time.perf_counter()
                await write("gateway", VolumeAttachRequested(instance_id=instance_id), volume_id)
                await wait_for(events, "VolumeAttached", volume_id)
                attached = time.perf_counter()
                await write("gateway", VolumeDetachRequested(instance_id=instance_id), volume_id)
                await wait_for(events, "VolumeDetached", volume_id)
                done = time.perf_counter()
                attach_agent.append(attached - began)
                detach_agent.append(done - attached)
                through_agent.append(done - began)

            connection = libvirt.open(URI)
            try:
                domain = connection.lookupByName(domain_name(instance_id))
                flags = libvirt.VIR_DOMAIN_AFFECT_LIVE
                for volume_id in volumes:
                    element = disk_xml(volume_disk(config, volume_id, "vdb"))
                    began = time.perf_counter()
                    await asyncio.to_thread(domain.attachDeviceFlags, element, flags)
                    await asyncio.to_thread(domain.detachDeviceFlags, element, flags)
                    while True:
                        if "vdb" not in await asyncio.to_thread(domain.XMLDesc, 0):
                            break
                        await asyncio.sleep(0.005)
                    direct.append(time.perf_counter() - began)
            finally:
                connection.close()
        print(f"{args.rounds} rounds on one TCG guest, RBD volumes on {cluster.monitor}")
        print(summary("agent: attach (request→event)", attach_agent))
        print(summary("agent: detach (request→event)", detach_agent))
        print(summary("agent: attach + detach", through_agent))
        print(summary("libvirt directly: attach + detach", direct))
    finally:
        runner.request_stop()
        with contextlib.suppress(Exception):
            await serving
        await runner.close(snapshot=False)
        await producer.stop()
        await driver.destroy(instance_id)
        await driver.close()
        await asyncio.to_thread(images, cluster, [], names)
        connection = libvirt.open(URI)
        with contextlib.suppress(libvirt.libvirtError):
            assert ceph.secret_uuid is not None
            connection.secretLookupByUUIDString(ceph.secret_uuid).undefine()
        connection.close()
        if started_daemon:
            libvirt_daemon.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--ceph-port", type=int, default=6789)
    parser.add_argument("--rounds", type=int, default=10)
    asyncio.run(main(parser.parse_args()))
