"""A stock cloud image's boot to its first SSH login, through Virga and under plain libvirt, in
one run: Debian 12 (`debian-12`, built here or taken from the cache), qemu:///system, TCG.

Usage: python bench/guest_boot_bench.py [--boots 1] [--kafka-port 19290 | --bootstrap H:P]
       [--ceph-port 16789] [--plain-only]   (as root: libvirtd, Ceph, bridges, namespaces)

- plain: the image's qcow2 overlay (a local file) with a hand-made config drive (a fresh key, a
  user-data script, a static address), one NIC on a bridge; from the domain's start to the
  first successful SSH login as `debian` from a namespace on that bridge, and to
  `cloud-init status --wait` done. The guest's own boot: the baseline.
- Virga: a whole stack (tests/support/stack.py: gateway, scheduler, storage on Ceph, compute
  on qemu:///system, network agent with DHCP and metadata) and the same image uploaded through
  the API; from `POST /v1/instances` (1 vCPU, 1 GiB, a config drive, the same user data) to
  the first SSH login with the tenant's keypair, from a namespace plugged into the tenant's
  network as a port of its own; its disk is an RBD clone of the image (plain's a local qcow2
  overlay). The instance's events (`GET /v1/instances/{id}/events`) split that time into the
  control plane's phases and the guest's own boot after InstanceStarted.

One guest at a time: plain and Virga boots alternate, `--boots` of each. Target: Virga's
median POST→first SSH less than 2 s above plain's median domain start→first SSH. Also
reports how long the image cache took to answer (a cold build when the cache is empty).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import stock_guest
from tests.support.virga_guest_boot import VirgaBoot, VirgaBooter, virga_booter

from virga_devstack import libvirt as libvirt_daemon
from virga_devstack import stock_image
from virga_devstack.ceph import CephCluster
from virga_devstack.kafka import KafkaBroker

BOOT_SECONDS = 600.0
USER_DATA = b"#!/bin/sh\ntouch /var/tmp/virga-bench-marker\n"
TARGET_SECONDS = 2.0


def boot_once(image: Path) -> tuple[float, float]:
    """(seconds to the first SSH login, seconds to cloud-init done), from domain start."""
    with (
        tempfile.TemporaryDirectory(prefix="virga-guest-boot-bench-") as tmp,
        stock_guest.segment("vgb") as segment,
        stock_guest.booted(image, Path(tmp), segment, USER_DATA) as guest,
    ):
        first_ssh = guest.wait_for_ssh(BOOT_SECONDS)
        done = guest.ssh("cloud-init status --wait", timeout=BOOT_SECONDS)
        if "status: done" not in done.stdout:
            raise SystemExit(f"cloud-init did not finish: {done.stdout}{done.stderr}")
        return first_ssh, time.monotonic() - guest.started


async def alternate(
    image: Path, boots: int, virga: VirgaBooter | None
) -> tuple[list[tuple[float, float]], list[VirgaBoot]]:
    plain: list[tuple[float, float]] = []
    through_virga: list[VirgaBoot] = []
    for number in range(1, boots + 1):
        first, finished = await asyncio.to_thread(boot_once, image)
        plain.append((first, finished))
        print(f"plain boot {number}: first SSH {first:.1f} s, cloud-init done {finished:.1f} s")
        if virga is not None:
            boot = await virga.boot_once(f"bench-{number}", USER_DATA)
            through_virga.append(boot)
            print(f"virga boot {number}: {boot.describe()}", flush=True)
    return plain, through_virga


def report(plain: list[tuple[float, float]], virga: list[VirgaBoot]) -> None:
    ssh = statistics.median(first for first, _ in plain)
    print(f"domain start→first SSH: median {ssh:.1f} s ({len(plain)} boots)")
    print(f"domain start→cloud-init done: median {statistics.median(d for _, d in plain):.1f} s")
    if not virga:
        return
    through = statistics.median(boot.first_ssh for boot in virga)
    done = statistics.median(boot.cloud_init_done for boot in virga)
    control = statistics.median(boot.started for boot in virga)
    guest = statistics.median(boot.first_ssh - boot.started for boot in virga)
    print(f"Virga POST→first SSH: median {through:.1f} s ({len(virga)} boots)")
    print(f"Virga POST→cloud-init done: median {done:.1f} s")
    print(f"Virga POST→InstanceStarted: median {control:.1f} s (the control plane's share)")
    print(f"Virga InstanceStarted→first SSH: median {guest:.1f} s (the guest's own boot)")
    for phase in virga[0].phase_names():
        values = [boot.phase(phase) for boot in virga]
        print(f"  phase {phase}: median {statistics.median(values):.2f} s")
    difference = through - ssh
    verdict = "met" if difference < TARGET_SECONDS else "missed"
    print(
        f"difference (Virga - plain) first SSH: median {difference:+.1f} s "
        f"(target < {TARGET_SECONDS:.0f} s: {verdict})"
    )
    print(
        "note: plain's disk is a local qcow2 overlay of the image, Virga's an RBD clone "
        "(Ceph, one memstore OSD); plain's address is static, Virga's from DHCP"
    )


async def run(args: argparse.Namespace, image: Path, bootstrap: str | None) -> None:
    if bootstrap is None:
        report(*await alternate(image, args.boots, None))
        return
    cluster = CephCluster(args.ceph_port)
    cluster_started = cluster.start()  # a cluster already running on that port is used as it is
    try:
        with tempfile.TemporaryDirectory(prefix="virga-guest-boot-stack-") as tmp:
            async with virga_booter(bootstrap, cluster, image, Path(tmp), log=print) as virga:
                report(*await alternate(image, args.boots, virga))
    finally:
        if cluster_started:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--boots", type=int, default=1)
    parser.add_argument("--bootstrap", help="a running broker (else one of its own)")
    parser.add_argument("--kafka-port", type=int, default=19290)
    parser.add_argument("--ceph-port", type=int, default=16789)
    parser.add_argument("--plain-only", action="store_true", help="only the baseline")
    args = parser.parse_args()
    began = time.monotonic()
    image = stock_image.build(log=lambda line: print(f"  {line}", flush=True))
    size = image.disk.stat().st_size / (1 << 20)
    print(f"image: {image.disk} ({size:.0f} MiB), ready in {time.monotonic() - began:.1f} s")
    broker = None
    bootstrap = None if args.plain_only else args.bootstrap
    if bootstrap is None and not args.plain_only:
        broker = KafkaBroker(args.kafka_port)
        broker.start(fresh=True)
        bootstrap = broker.bootstrap_servers
    started = libvirt_daemon.start()
    try:
        asyncio.run(run(args, image.disk, bootstrap))
    finally:
        if started:
            libvirt_daemon.stop()
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
