"""The command line of the local cluster: ``python -m virga_devstack ceph start|stop|status``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from virga_devstack.ceph import DEFAULT_PORT, START_TIMEOUT, CephCluster, CephError, require_tools
from virga_devstack.ceph_bindings import link_bindings


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``start``, ``stop``, ``status`` and ``link-bindings``; returns the process exit code."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("VIRGA_CEPH_PORT", DEFAULT_PORT)),
        help="monitor port (default: $VIRGA_CEPH_PORT or %(default)s)",
    )
    parser = argparse.ArgumentParser(prog=prog, description="A local one-OSD Ceph cluster.")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", parents=[common], help="start and wait for the pool")
    start.add_argument("--timeout", type=float, default=START_TIMEOUT, help="seconds to wait")
    commands.add_parser("stop", parents=[common], help="stop the daemons `start` started")
    commands.add_parser("status", parents=[common], help="exit 0 if the pool takes I/O")
    commands.add_parser(
        "link-bindings", help="make Debian's rados/rbd modules importable from this venv"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "link-bindings":
            print(f"ceph: rados and rbd linked by {link_bindings()}")
            return 0
        cluster = CephCluster(args.port)
        if args.command == "start":
            began = time.monotonic()
            if cluster.start(timeout=args.timeout):
                elapsed = time.monotonic() - began
                print(f"ceph: started {cluster.monitor} in {elapsed:.1f} s", end="")
            else:
                print(f"ceph: already running on {cluster.monitor}", end="")
            print(f" (pool {cluster.pool}; conf {cluster.conf_file})")
            return 0
        if args.command == "stop":
            stopped = cluster.stop()
            print(f"ceph: {'stopped' if stopped else 'not running on'} {cluster.monitor}")
            return 0
        require_tools()
        if not cluster.is_running():
            print(f"ceph: not running (or its pool is silent) on {cluster.monitor}")
            return 1
        print(f"ceph: running on {cluster.monitor} (pool {cluster.pool}; conf {cluster.conf_file})")
        return 0
    except CephError as error:
        print(f"ceph: error: {error}", file=sys.stderr)
        return 1
