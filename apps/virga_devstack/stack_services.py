"""The service processes of the local stack: their ports, environments and secrets.

Pids and logs live in `STATE` (``$VIRGA_STACK_DIR``, default ``$VIRGA_STATE_DIR/stack``); the
admin token and the token secret in `SECRETS`, ``.virga/`` of the checkout (git-ignored), so
the CLI finds them.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

from virga_devstack import ceph
from virga_devstack.ceph_users import STORAGE_USER, compute_user, keyring_path
from virga_devstack.localproc import default_state_root
from virga_devstack.processes import ServiceProcess

STATE = Path(os.environ.get("VIRGA_STACK_DIR") or default_state_root() / "stack")
SECRETS = Path(".virga")
# /healthz ports of the services but the gateway: consecutive from $VIRGA_STACK_PORTS_FROM.
_FIRST_PORT = int(os.environ.get("VIRGA_STACK_PORTS_FROM", "8091"))
SCHEDULER_PORT, COMPUTE_PORT, NETWORK_PORT, STORAGE_PORT, NETWORK_AGENT_PORT, BILLING_PORT = range(
    _FIRST_PORT, _FIRST_PORT + 6
)
CONSOLE_PORT = _FIRST_PORT + 6
"""The compute agent's console server (serial consoles, relayed by the gateway)."""


def _secret(name: str) -> Path:
    path = SECRETS / name
    if not path.exists():
        SECRETS.mkdir(mode=0o700, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32) + "\n")
        path.chmod(0o600)
    return path


def host_name() -> str:
    return os.environ.get("VIRGA_HOST") or socket.gethostname().split(".")[0] or "host-1"


def services(
    kafka_port: int, gateway_port: int, libvirt_uri: str, cluster: ceph.CephCluster | None = None
) -> list[ServiceProcess]:
    """The service processes; without `cluster` the storage service keeps volumes in memory.

    With `cluster`, the storage service and the compute agent each get their own cephx user
    and keyring (made by `ceph_users.make_service_users` when the stack starts), never
    `client.admin`'s.
    """
    host = host_name()
    common = {
        "VIRGA_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "VIRGA_NAMESPACE": os.environ.get("VIRGA_NAMESPACE", "virga"),
    }
    storage_ceph = {"VIRGA_CEPH_CONF": "memory://", "VIRGA_CEPH_POOL": "rbd"}
    # Volumes live in the storage process: the agent only needs to name a monitor.
    compute_ceph = {"VIRGA_CEPH_MONITORS": "127.0.0.1:6789", "VIRGA_CEPH_USER": "none"}
    if cluster:
        storage_ceph = ceph_user_env(cluster, STORAGE_USER)
        compute_ceph = ceph_user_env(cluster, compute_user(host))

    def service(name: str, module: str, port: int, env: dict[str, str]) -> ServiceProcess:
        return ServiceProcess(
            name,
            module,
            {**common, "VIRGA_HTTP_PORT": str(port), **env},
            STATE,
            health_url=f"http://127.0.0.1:{port}/healthz",
        )

    # Gateway and agent share it: the agent hands console logs only to its holder.
    console_log_key = _secret("console-log-key").read_text().strip()
    gateway = ServiceProcess(
        "gateway",
        "virga_gateway",
        {
            **common,
            "VIRGA_GATEWAY_HOST": "127.0.0.1",
            "VIRGA_GATEWAY_PORT": str(gateway_port),
            "VIRGA_ADMIN_TOKEN_FILE": str(_secret("admin-token").resolve()),
            "VIRGA_TOKEN_SECRET_FILE": str(_secret("token-secret").resolve()),
            "VIRGA_STORAGE_URL": f"http://127.0.0.1:{STORAGE_PORT}",
            "VIRGA_CONSOLE_LOG_KEY": console_log_key,
        },
        STATE,
        health_url=f"http://127.0.0.1:{gateway_port}/healthz",
    )
    return [
        service("storage", "virga_storage", STORAGE_PORT,
                {**storage_ceph, "VIRGA_IMAGE_SPOOL_DIR": str(STATE / "spool")}),
        service("scheduler", "virga_scheduler", SCHEDULER_PORT, {}),
        service("network", "virga_network", NETWORK_PORT, {}),
        service("billing", "virga_billing", BILLING_PORT, {}),
        service(f"compute-{host}", "virga_compute", COMPUTE_PORT, {
            "VIRGA_HOST": host,
            "VIRGA_LIBVIRT_URI": libvirt_uri,
            "VIRGA_DOMAIN_TYPE": "qemu" if libvirt_uri.startswith("qemu") else "test",
            "VIRGA_INSTANCES_PATH": str(STATE / "instances"),
            "VIRGA_CONSOLE_PORT": str(CONSOLE_PORT),
            "VIRGA_CONSOLE_LOG_KEY": console_log_key,
            **compute_ceph,
        }),
        service(f"network-agent-{host}", "virga_network.agent", NETWORK_AGENT_PORT, {
            "VIRGA_HOST": host,
            "VIRGA_VTEP_IP": os.environ.get("VIRGA_VTEP_IP", "127.0.0.1"),
        }),
        gateway,
    ]  # fmt: skip


def ceph_user_env(cluster: ceph.CephCluster, user: str) -> dict[str, str]:
    """The VIRGA_CEPH_* settings of a service running as its own cephx `user` on `cluster`."""
    return {
        "VIRGA_CEPH_CONF": str(cluster.conf_file),
        "VIRGA_CEPH_USER": user,
        "VIRGA_CEPH_KEYRING": str(keyring_path(cluster, user)),
        "VIRGA_CEPH_POOL": cluster.pool,
    }
