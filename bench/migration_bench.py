"""Live migration of an idle TCG guest on RBD between two libvirt hosts on this machine: the
compute driver's `migrate_live` next to the bare `virsh migrate --live --p2p` of the same guest
between the same daemons, in the same run, rounds interleaved.

Usage: python bench/migration_bench.py [--ceph-port 6789] [--rounds 5] [--ram-mb 128]

The hosts are `virga_devstack.libvirt_host` (started and stopped by the bench), the guest
Virga's busybox guest with its boot volume in the local Ceph cluster (`--ceph-port`, running).
A round moves the guest A→B and B→A with the driver, then the same with virsh. Total: the
wall time of the call (driver) or of the virsh process. Downtime: what QEMU measured (the
destination's completed job statistics, `downtime` in ms).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import libvirt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.libvirt_hosts import libvirt_hosts
from tests.support.migration_lab import (
    Host,
    ceph_settings,
    drivers,
    guest_on,
    guest_uptime,
    virsh_migrate,
)

from virga_compute.drivers.domain_xml import domain_name
from virga_devstack.ceph import CephCluster
from virga_devstack.guest import ensure_guest
from virga_devstack.libvirt_host import LibvirtHost


def downtime_ms(destination: LibvirtHost, instance_id: str) -> int:
    conn = libvirt.open(destination.uri)
    try:
        dom = conn.lookupByName(domain_name(instance_id))
        stats = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        return int(stats.get("downtime", -1))
    finally:
        conn.close()


async def _virga(source: Host, destination: Host, instance_id: str) -> float:
    info = destination.info
    started = time.monotonic()
    await source.driver.migrate_live(instance_id, info.peer_uri, info.migration_address)
    return time.monotonic() - started


async def main(args: argparse.Namespace) -> None:
    cluster = CephCluster(args.ceph_port)
    if not cluster.is_running():
        raise SystemExit(f"no Ceph cluster on port {args.ceph_port}: start it first")
    ceph = ceph_settings(cluster)
    guest = ensure_guest()
    results: dict[str, list[tuple[float, int]]] = {"virga": [], "virsh": []}
    with libvirt_hosts(2, cluster) as infos, tempfile.TemporaryDirectory() as scratch:
        console_dir = Path(scratch)
        async with (
            drivers(tuple(infos), ceph, console_dir) as (a, b),
            guest_on(a, (b,), cluster, ceph, guest, console_dir, ram_mb=args.ram_mb) as instance_id,
        ):
            first = await asyncio.to_thread(guest_uptime, a.info.uri, instance_id)
            for _ in range(args.rounds):
                for source, destination in ((a, b), (b, a)):
                    seconds = await _virga(source, destination, instance_id)
                    down = downtime_ms(destination.info, instance_id)
                    results["virga"].append((seconds, down))
                for source, destination in ((a, b), (b, a)):
                    seconds = await asyncio.to_thread(
                        virsh_migrate, source.info, destination.info, instance_id
                    )
                    down = downtime_ms(destination.info, instance_id)
                    results["virsh"].append((seconds, down))
            last = await asyncio.to_thread(guest_uptime, a.info.uri, instance_id)
    migrations = 4 * args.rounds
    print(f"{migrations} migrations of one idle {args.ram_mb} MiB TCG guest on RBD")
    print(f"guest uptime {first:.1f} s before, {last:.1f} s after: never restarted")
    for name, values in results.items():
        totals = [seconds for seconds, _ in values]
        downs = [down for _, down in values]
        print(
            f"{name:6} total median {statistics.median(totals):.2f} s"
            f" (min {min(totals):.2f}, max {max(totals):.2f});"
            f" downtime median {statistics.median(downs):.0f} ms"
            f" (min {min(downs)}, max {max(downs)})"
        )
    ratio = statistics.median(t for t, _ in results["virga"]) / statistics.median(
        t for t, _ in results["virsh"]
    )
    print(f"driver / virsh, median total: {ratio:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ceph-port", type=int, default=6789)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ram-mb", type=int, default=128)
    asyncio.run(main(parser.parse_args()))
