"""A stock cloud image's own boot: Debian 12 (`debian-12`, built here or taken from the cache)
under plain libvirt (qemu:///system, TCG) with a hand-made config drive, from the domain's
start to the first successful SSH login, and to `cloud-init status --wait` done.

Usage: python bench/guest_boot_bench.py [--boots 1]   (as root: libvirtd, a bridge, a netns)

This is the baseline the control plane is measured against: the same image booted through
`POST /v1/instances` should reach its first SSH login less than 2 s later than here. Also
reports how long the image cache took to answer (a cold build when the cache is empty).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import stock_guest

from virga_devstack import libvirt as libvirt_daemon
from virga_devstack import stock_image

BOOT_SECONDS = 600.0
USER_DATA = b"#!/bin/sh\ntouch /var/tmp/virga-bench-marker\n"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--boots", type=int, default=1)
    args = parser.parse_args()
    began = time.monotonic()
    image = stock_image.build(log=lambda line: print(f"  {line}", flush=True))
    size = image.disk.stat().st_size / (1 << 20)
    print(f"image: {image.disk} ({size:.0f} MiB), ready in {time.monotonic() - began:.1f} s")
    started = libvirt_daemon.start()
    try:
        ssh, done = [], []
        for number in range(1, args.boots + 1):
            first, finished = boot_once(image.disk)
            ssh.append(first)
            done.append(finished)
            print(f"boot {number}: first SSH {first:.1f} s, cloud-init done {finished:.1f} s")
    finally:
        if started:
            libvirt_daemon.stop()
    print(f"domain start→first SSH: median {statistics.median(ssh):.1f} s ({args.boots} boots)")
    print(f"domain start→cloud-init done: median {statistics.median(done):.1f} s")


if __name__ == "__main__":
    main()
