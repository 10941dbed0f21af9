"""Volumes cloned from an image per second through the storage service (Kafka + real Ceph),
next to plain `rbd clone` of the same image from the CLI in the same run (and the service's
own librbd calls in a loop, without the log); and the time to create a 20 GB boot volume.

Usage: python bench/volume_bench.py --bootstrap 127.0.0.1:9092 --ceph-port 16789
                                    [--volumes 200] [--cli-clones 50]

The storage service runs in this process on its own namespace; requests are written to
`<ns>.api` as the gateway would, all at once, and the clock stops at the last VolumeCreated
read back from `<ns>.storage` (request to outcome: decide, rbd clone, transaction). The
baseline clones the same image's base snapshot with the `rbd` CLI, one process per clone,
as a script or an operator would. The 20 GB boot volume is an `InstanceScheduled` with a
20 GB flavor and the image, timed to its VolumeCreated, against `rbd clone` + `rbd resize`.
Everything made is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.kafka import following

import virga_events.catalog  # noqa: F401  (registers the event types)
from virga_devstack.ceph import CephCluster
from virga_eventlog import EventWriter, KafkaSettings, ensure_topics, event_topic, virga_topics
from virga_events import Envelope, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.scheduler import InstanceScheduled
from virga_events.catalog.storage import VolumeRequested, rbd_image_name, rbd_volume_name
from virga_storage.config import StorageConfig
from virga_storage.drivers.base import BASE_SNAPSHOT
from virga_storage.drivers.rbd import RbdDriver
from virga_storage.service import storage_runner


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def rbd(cluster: CephCluster, *args: str) -> None:
    subprocess.run(
        ["rbd", "-c", str(cluster.conf_file), "--keyring", str(cluster.keyring), *args],
        check=True,
        capture_output=True,
    )


async def wait_created(events: list[Envelope], ids: set[str], seconds: float = 600) -> float:
    deadline = time.perf_counter() + seconds
    while True:
        done = {e.aggregate_id for e in events if e.type in ("VolumeCreated", "VolumeFailed")}
        if ids <= done:
            failed = [e for e in events if e.type == "VolumeFailed" and e.aggregate_id in ids]
            if failed:
                raise SystemExit(f"{len(failed)} volumes failed: {failed[0].payload}")
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise SystemExit(f"{len(ids - done)} volumes not created in {seconds} s")
        await asyncio.sleep(0.005)


async def main(args: argparse.Namespace) -> None:
    cluster = CephCluster(args.ceph_port)
    cluster.start()  # a cluster already running on that port is used as it is
    namespace = f"vbench{uuid.uuid4().hex[:6]}"
    settings = KafkaSettings(bootstrap_servers=args.bootstrap, namespace=namespace)
    await ensure_topics(settings, virga_topics(partitions=3, namespace=namespace))
    config = StorageConfig(
        ceph_conf=str(cluster.conf_file),
        ceph_keyring=str(cluster.keyring),
        ceph_pool=cluster.pool,
        namespace=namespace,
    )
    driver = RbdDriver(cluster.conf_file, cluster.keyring, cluster.pool)
    ceph = RbdDriver(cluster.conf_file, cluster.keyring, cluster.pool)
    await driver.connect()
    await ceph.connect()
    image_id = f"bench-{uuid.uuid4().hex[:8]}"
    image = rbd_image_name(image_id)
    await ceph.import_image(image, one_chunk(b"virga bench image " * 65536), 64 << 20)
    made: list[str] = []
    writer = EventWriter(settings, transactional_id=f"{namespace}-bench")
    await writer.start()
    runner = storage_runner(config, driver, settings)
    await runner.start()
    serving = asyncio.create_task(runner.serve())
    try:
        await asyncio.wait_for(runner.ready.wait(), 30)
        topic = event_topic("storage", namespace)
        async with following(settings, topic, client_id=f"{namespace}-follow") as events:
            # Through the service: all requests at once, in one transaction.
            ids = [f"v{i:05d}-{uuid.uuid4().hex[:6]}" for i in range(args.volumes)]
            requests = [
                new_event(
                    VolumeRequested(name=f"bench-{i}", size_gb=1, image=image_id),
                    aggregate_id=volume_id,
                    tenant_id="bench",
                    producer="gateway",
                )
                for i, volume_id in enumerate(ids)
            ]
            started = time.perf_counter()
            async with writer.transaction() as txn:
                for request in requests:
                    await txn.append(event_topic("gateway", namespace), request)
            finished = await wait_created(events, set(ids))
            made += [rbd_volume_name(v) for v in ids]
            service_rate = args.volumes / (finished - started)

            # Baseline: the rbd CLI, one clone per process, same image and snapshot.
            cli_names = [f"cli-{uuid.uuid4().hex[:10]}" for _ in range(args.cli_clones)]
            started = time.perf_counter()
            for name in cli_names:
                rbd(
                    cluster,
                    "clone",
                    f"{cluster.pool}/{image}@{BASE_SNAPSHOT}",
                    f"{cluster.pool}/{name}",
                )
            cli_rate = args.cli_clones / (time.perf_counter() - started)
            made += cli_names

            # Second baseline: the same librbd calls the service makes, in a loop, no log.
            lib_names = [f"lib-{uuid.uuid4().hex[:10]}" for _ in range(args.cli_clones)]
            started = time.perf_counter()
            for name in lib_names:
                await ceph.clone(image, BASE_SNAPSHOT, name, 1 << 30)
            lib_rate = args.cli_clones / (time.perf_counter() - started)
            made += lib_names

            # A 20 GB boot volume, through the service, several times.
            flavor = Flavor(name="bench.20g", vcpus=1, ram_mb=512, disk_gb=20)
            boot_times = []
            for attempt in range(args.boots):
                instance = f"i-{uuid.uuid4().hex[:10]}"
                placed = new_event(
                    InstanceScheduled(
                        host="hv", rack="r", zone="z", attempt=1, name=f"boot-{attempt}",
                        flavor=flavor, image=image_id,
                    ),
                    aggregate_id=instance, tenant_id="bench", producer="scheduler",
                )  # fmt: skip
                started = time.perf_counter()
                async with writer.transaction() as txn:
                    await txn.append(event_topic("scheduler", namespace), placed)
                boot_times.append(await wait_created(events, {instance}) - started)
                made.append(rbd_volume_name(instance))
                size = (await ceph.info(rbd_volume_name(instance))).size_bytes
                assert size == 20 << 30, size
            cli_boot = []
            for _ in range(args.boots):
                name = f"cli-boot-{uuid.uuid4().hex[:8]}"
                started = time.perf_counter()
                rbd(
                    cluster,
                    "clone",
                    f"{cluster.pool}/{image}@{BASE_SNAPSHOT}",
                    f"{cluster.pool}/{name}",
                )
                rbd(cluster, "resize", "--size", "20G", f"{cluster.pool}/{name}")
                cli_boot.append(time.perf_counter() - started)
                made.append(name)
    finally:
        runner.request_stop()
        await serving
        await runner.close()
        await writer.stop()
        for name in made:
            await ceph.remove(name)
        await ceph.remove(image)
        await driver.close()
        await ceph.close()
    print(
        f"volumes from an image through the service: {service_rate:.1f}/s ({args.volumes} at once)"
    )
    print(
        f"baseline, rbd clone from the CLI:           {cli_rate:.1f}/s ({args.cli_clones} in a row)"
    )
    print(
        f"baseline, librbd clone + grow, no log:      {lib_rate:.1f}/s ({args.cli_clones} in a row)"
    )
    for label, times in (
        ("20 GB boot volume through the service:", boot_times),
        ("baseline, rbd clone + rbd resize 20G:  ", cli_boot),
    ):
        ms = [t * 1000 for t in times]
        print(
            f"{label} median {statistics.median(ms):.0f} ms"
            f" (min {min(ms):.0f}, max {max(ms):.0f}, n={len(ms)})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--ceph-port", type=int, default=16789)
    parser.add_argument("--volumes", type=int, default=200)
    parser.add_argument("--cli-clones", type=int, default=50)
    parser.add_argument("--boots", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
