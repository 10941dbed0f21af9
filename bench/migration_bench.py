"""Live migration of an idle TCG guest on RBD between two libvirt hosts on this machine: the
compute driver's `migrate_live` next to the bare `virsh migrate --live --p2p` of the same guest
between the same daemons, in the same run, rounds interleaved.

Usage: python bench/migration_bench.py [--ceph-port 6789] [--rounds 5] [--ram-mb 128]
           [--busy MIB] [--auto-converge] [--compressed]

The hosts are `virga_devstack.libvirt_host` (started and stopped by the bench), the guest
Virga's busybox guest with its boot volume in the local Ceph cluster (`--ceph-port`, running).
A round moves the guest A→B and B→A with the driver, then the same with virsh. Total: the
wall time of the call (driver) or of the virsh process. Downtime: what QEMU measured (the
destination's completed job statistics, `downtime` in ms). `--busy 48` makes the guest
rewrite 48 MiB of its memory in a loop (`dd` over a file in its RAM root) for the whole run;
`--auto-converge` and `--compressed` (XBZRLE) go to both the driver and virsh.
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
    console_text,
    drivers,
    guest_on,
    guest_uptime,
    start_dirtying,
    virsh_migrate,
)

from virga_compute.drivers.base import MigrationOptions
from virga_compute.drivers.domain_xml import domain_name
from virga_devstack.ceph import CephCluster
from virga_devstack.guest import READY_LINE, ensure_guest
from virga_devstack.libvirt_host import LibvirtHost


def downtime_ms(destination: LibvirtHost, instance_id: str) -> int:
    conn = libvirt.open(destination.uri)
    try:
        dom = conn.lookupByName(domain_name(instance_id))
        stats = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        return int(stats.get("downtime", -1))
    finally:
        conn.close()


async def _virga(
    source: Host, destination: Host, instance_id: str, options: MigrationOptions
) -> float:
    info = destination.info
    started = time.monotonic()
    await source.driver.migrate_live(
        instance_id, info.peer_uri, info.migration_address, options=options
    )
    return time.monotonic() - started


async def main(args: argparse.Namespace) -> None:
    cluster = CephCluster(args.ceph_port)
    if not cluster.is_running():
        raise SystemExit(f"no Ceph cluster on port {args.ceph_port}: start it first")
    ceph = ceph_settings(cluster)
    guest = ensure_guest()
    results: dict[str, list[tuple[float, int]]] = {"virga": [], "virsh": []}
    options = MigrationOptions(auto_converge=args.auto_converge, compressed=args.compressed)
    virsh_flags = [
        flag
        for flag, wanted in (
            ("--auto-converge", args.auto_converge),
            ("--compressed", args.compressed),
        )
        if wanted
    ]
    with libvirt_hosts(2, cluster) as infos, tempfile.TemporaryDirectory() as scratch:
        console_dir = Path(scratch)
        async with (
            drivers(tuple(infos), ceph, console_dir) as (a, b),
            guest_on(a, (b,), cluster, ceph, guest, console_dir, ram_mb=args.ram_mb) as instance_id,
        ):
            first = await asyncio.to_thread(guest_uptime, a.info.uri, instance_id)
            if args.busy:
                await asyncio.to_thread(start_dirtying, a.info.uri, instance_id, args.busy)
            for _ in range(args.rounds):
                for source, destination in ((a, b), (b, a)):
                    seconds = await _virga(source, destination, instance_id, options)
                    down = downtime_ms(destination.info, instance_id)
                    results["virga"].append((seconds, down))
                for source, destination in ((a, b), (b, a)):
                    seconds = await asyncio.to_thread(
                        virsh_migrate, source.info, destination.info, instance_id, *virsh_flags
                    )
                    down = downtime_ms(destination.info, instance_id)
                    results["virsh"].append((seconds, down))
            last = await asyncio.to_thread(guest_uptime, a.info.uri, instance_id)
            console = console_text(console_dir, instance_id)
            boots = console.count(READY_LINE)
            if boots != 1 and args.keep_console:
                await asyncio.to_thread(Path(args.keep_console).write_text, console)
    migrations = 4 * args.rounds
    what = f"rewriting {args.busy} MiB of its memory" if args.busy else "idle"
    print(
        f"{migrations} migrations of one {args.ram_mb} MiB TCG guest on RBD, {what};"
        f" auto-converge {args.auto_converge}, XBZRLE {args.compressed}"
    )
    verdict = "never restarted" if boots == 1 and last > first else f"RESTARTED ({boots} boots)"
    print(f"guest uptime {first:.1f} s before, {last:.1f} s after: {verdict}")
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
    parser.add_argument("--busy", type=int, default=0, help="MiB the guest keeps rewriting")
    parser.add_argument("--auto-converge", action="store_true")
    parser.add_argument("--compressed", action="store_true", help="XBZRLE")
    parser.add_argument("--keep-console", help="write the guest's console here if it rebooted")
    asyncio.run(main(parser.parse_args()))
