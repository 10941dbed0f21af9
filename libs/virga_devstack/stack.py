"""The whole local stack behind `make up`/`make down`: Kafka, libvirt, Ceph, and every service.

State (pids, logs) lives outside the repository in `$VIRGA_STATE_DIR/stack`; the admin token
and the token secret live in `.virga/` of the checkout (git-ignored), so the CLI finds them.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from virga_devstack import ceph, kafka, libvirt
from virga_devstack.processes import ServiceProcess, ServiceProcessError

STATE = Path(os.environ.get("VIRGA_STATE_DIR", Path.home() / ".local/state/virga")) / "stack"
SECRETS = Path(".virga")


def _secret(name: str) -> Path:
    path = SECRETS / name
    if not path.exists():
        SECRETS.mkdir(mode=0o700, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32) + "\n")
        path.chmod(0o600)
    return path


STORAGE_PORT = 8094


def services(
    kafka_port: int, gateway_port: int, libvirt_uri: str, cluster: ceph.CephCluster | None = None
) -> list[ServiceProcess]:
    """The service processes; without `cluster` the storage service keeps volumes in memory."""
    host = os.environ.get("VIRGA_HOST") or socket.gethostname().split(".")[0] or "host-1"
    common = {
        "VIRGA_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "VIRGA_NAMESPACE": os.environ.get("VIRGA_NAMESPACE", "virga"),
    }
    return [
        ServiceProcess(
            "gateway",
            "virga_gateway",
            {
                **common,
                "VIRGA_GATEWAY_HOST": "127.0.0.1",
                "VIRGA_GATEWAY_PORT": str(gateway_port),
                "VIRGA_ADMIN_TOKEN_FILE": str(_secret("admin-token").resolve()),
                "VIRGA_TOKEN_SECRET_FILE": str(_secret("token-secret").resolve()),
                "VIRGA_STORAGE_URL": f"http://127.0.0.1:{STORAGE_PORT}",
            },
            STATE,
            health_url=f"http://127.0.0.1:{gateway_port}/healthz",
        ),
        ServiceProcess(
            "storage",
            "virga_storage",
            {
                **common,
                "VIRGA_CEPH_CONF": str(cluster.conf_file) if cluster else "memory://",
                "VIRGA_CEPH_KEYRING": str(cluster.keyring) if cluster else "",
                "VIRGA_CEPH_POOL": cluster.pool if cluster else "rbd",
                "VIRGA_HTTP_PORT": str(STORAGE_PORT),
            },
            STATE,
            health_url=f"http://127.0.0.1:{STORAGE_PORT}/healthz",
        ),
        ServiceProcess(
            "scheduler",
            "virga_scheduler",
            {
                **common,
                "VIRGA_HTTP_PORT": "8091",
            },
            STATE,
            health_url="http://127.0.0.1:8091/healthz",
        ),
        ServiceProcess(
            "network",
            "virga_network",
            {
                **common,
                "VIRGA_HTTP_PORT": "8093",
            },
            STATE,
            health_url="http://127.0.0.1:8093/healthz",
        ),
        ServiceProcess(
            f"compute-{host}",
            "virga_compute",
            {
                **common,
                "VIRGA_HOST": host,
                "VIRGA_LIBVIRT_URI": libvirt_uri,
                "VIRGA_DOMAIN_TYPE": "qemu" if libvirt_uri.startswith("qemu") else "test",
                "VIRGA_INSTANCES_PATH": str(STATE / "instances"),
                "VIRGA_HTTP_PORT": "8092",
            },
            STATE,
            health_url="http://127.0.0.1:8092/healthz",
        ),
    ]


def up(kafka_port: int, gateway_port: int) -> int:
    print(f"==> Kafka on 127.0.0.1:{kafka_port}", flush=True)
    broker = kafka.KafkaBroker(kafka_port)
    broker.start()
    uri = os.environ.get("VIRGA_LIBVIRT_URI", "")
    if not uri:
        try:
            print("==> libvirtd (qemu:///system, TCG guests)", flush=True)
            libvirt.start()
            uri = "qemu:///system"
        except libvirt.LibvirtError as error:
            print(f"    {error}\n    falling back to libvirt's in-process test driver", flush=True)
            uri = "test:///default"
    devstack_ceph = ceph.CephCluster(int(os.environ.get("VIRGA_CEPH_PORT", ceph.DEFAULT_PORT)))
    cluster: ceph.CephCluster | None = devstack_ceph
    print(f"==> Ceph on {devstack_ceph.monitor} (one monitor, one memstore OSD)", flush=True)
    try:
        devstack_ceph.start()
    except ceph.CephError as error:
        print(f"    {error}\n    falling back to volumes kept in the storage service's memory")
        cluster = None
    for process in services(kafka_port, gateway_port, uri, cluster):
        print(f"==> {process.name}", flush=True)
        process.start()
        try:
            process.wait_healthy(timeout=120)
        except ServiceProcessError as error:
            print(error, file=sys.stderr)
            return 1
    token = (SECRETS / "admin-token").read_text().strip()
    print(f"""
Virga is up: API on http://127.0.0.1:{gateway_port}  (logs: {STATE})
Admin token (also in .virga/admin-token): {token}

  curl -s -H "Authorization: Bearer $(cat .virga/admin-token)" http://127.0.0.1:{gateway_port}/v1/flavors
  curl -s -X POST -H "Authorization: Bearer $(cat .virga/admin-token)" \\
       -H 'Content-Type: application/json' -d '{{"name": "acme"}}' \\
       http://127.0.0.1:{gateway_port}/v1/tenants

`make down` stops everything `make up` started.""")
    return 0


def down(kafka_port: int, gateway_port: int) -> int:
    for process in reversed(services(kafka_port, gateway_port, "")):
        if process.pid() is not None:
            print(f"==> stopping {process.name}", flush=True)
        process.stop()
    libvirt.stop()
    print(f"==> stopping Kafka on 127.0.0.1:{kafka_port}", flush=True)
    kafka.KafkaBroker(kafka_port).stop()
    print("Guests keep running: stopping the control plane never stops tenants' instances.")
    print(
        "Ceph keeps running too, since their disks live there"
        " (python -m virga_devstack ceph stop, once no guest needs it)."
    )
    return 0


def main(argv: Sequence[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument(
        "--kafka-port", type=int, default=int(os.environ.get("VIRGA_KAFKA_PORT", "9092"))
    )
    parser.add_argument(
        "--gateway-port", type=int, default=int(os.environ.get("VIRGA_GATEWAY_PORT", "8080"))
    )
    args = parser.parse_args(argv)
    if args.command == "up":
        return up(args.kafka_port, args.gateway_port)
    return down(args.kafka_port, args.gateway_port)
