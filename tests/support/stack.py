"""A whole Virga stack as OS processes on the test broker: gateway, storage, scheduler, compute
agents.

Each stack has its own topic namespace, so stacks on one broker never see each other.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import secrets
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from tests.support.ports import free_port
from virga_devstack import external
from virga_devstack.ceph import CephCluster
from virga_devstack.ceph_users import STORAGE_USER, client_keyring, compute_user
from virga_devstack.processes import ServiceProcess
from virga_eventlog.hosts import add_host_topics
from virga_eventlog.settings import KafkaSettings


@dataclass(frozen=True)
class HostSpec:
    """One compute agent: a "hypervisor host" of the test cloud."""

    name: str
    rack: str
    zone: str = "az1"
    libvirt_uri: str | None = None
    """None: libvirt's test driver, in the agent's process, on a node of TEST_NODE's size."""


TEST_NODE = """<node>
  <cpu><mhz>2400</mhz><model>x86_64</model><nodes>1</nodes><sockets>2</sockets><cores>16</cores>
    <threads>2</threads><active>64</active><total>64</total></cpu>
  <memory>{memory_kib}</memory>
</node>
"""
"""A test-driver hypervisor with 64 CPUs and 256 GiB: room for hundreds of small instances
(`test:///default` has 16 CPUs and 3 GiB). Each connection to it is a private world."""


class CephSettings(TypedDict):
    ceph_conf: str
    ceph_keyring: str
    ceph_pool: str
    ceph_cluster: CephCluster | None


def on_ceph(cluster: CephCluster) -> CephSettings:
    """`Stack` settings that keep its volumes, and its agents' disks, on `cluster`, each
    service as its own cephx user (as the local stack runs them), never client.admin."""
    return CephSettings(
        ceph_conf=str(cluster.conf_file),
        ceph_keyring=str(cluster.keyring),
        ceph_pool=cluster.pool,
        ceph_cluster=cluster,
    )


@dataclass
class Stack:
    bootstrap: str
    run_dir: Path
    hosts: tuple[HostSpec, ...]
    namespace: str = field(default_factory=lambda: f"e2e{uuid.uuid4().hex[:8]}")
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    gateway_port: int = field(default_factory=free_port)
    heartbeat_seconds: float = 1.0
    ceph_conf: str = "memory://"
    """The storage service's cluster: memory:// keeps volumes in its process; a ceph.conf
    (with `ceph_keyring` and `ceph_pool`) puts them on that cluster."""
    ceph_keyring: str = ""
    ceph_pool: str = "rbd"
    ceph_cluster: CephCluster | None = None
    """Set (by `on_ceph`): the storage service and each agent run as their own cephx users,
    made on this cluster; unset: both use `ceph_keyring` as client.admin."""
    storage_port: int = field(default_factory=free_port)
    guest_kernel: tuple[str, str, str] | None = None
    """(kernel, initrd, cmdline) every QEMU agent boots instances from (`virga_devstack.guest`):
    test images carry no boot loader."""
    network_agent_prefix: str | None = None
    """Run a network agent for the first host in this namespace, naming its interfaces with
    this prefix (1-3 characters): instance ports are taps, other ports veths. (Agents of two
    hosts in one namespace would plumb the same names.)"""
    network_agent_edge: bool = False
    """Let that agent serve DHCP and metadata (its edges' namespaces then outlive the stack
    unless the test deletes its networks first)."""
    billing: bool = False
    """Run the billing service too."""
    compute_env: dict[str, str] = field(default_factory=dict)
    """Extra settings of every compute agent (`VIRGA_STOP_GRACE_SECONDS`...)."""
    gateway_env: dict[str, str] = field(default_factory=dict)
    """Extra settings of the gateway (`VIRGA_CONSOLE_LOG_KEY`...)."""
    host_topics_added: bool = False
    """The hosts' topics exist already (a secure broker's `add_host` made them); otherwise
    `start` makes them over plaintext first."""
    external: external.ExternalSegment | None = None
    """Make this segment's bridge in the host's namespace and register it as an external
    network, as `make up` does (`virga_devstack.external`); `stop` removes the bridge."""
    external_network_id: str | None = None
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def storage_url(self) -> str:
        return f"http://127.0.0.1:{self.storage_port}"

    def _common(self) -> dict[str, str]:
        return {
            "VIRGA_KAFKA_BOOTSTRAP": self.bootstrap,
            "VIRGA_NAMESPACE": self.namespace,
            "VIRGA_LOG_FORMAT": "json",
        }

    def build(self) -> None:
        secret_dir = self.run_dir / "secrets"
        secret_dir.mkdir(parents=True, exist_ok=True)
        self.processes["gateway"] = ServiceProcess(
            "gateway",
            "virga_gateway",
            {
                **self._common(),
                "VIRGA_GATEWAY_HOST": "127.0.0.1",
                "VIRGA_GATEWAY_PORT": str(self.gateway_port),
                "VIRGA_ADMIN_TOKEN": self.admin_token,
                "VIRGA_TOKEN_SECRET": secrets.token_urlsafe(32),
                "VIRGA_STORAGE_URL": self.storage_url,
                **self.gateway_env,
            },
            self.run_dir,
            health_url=f"{self.gateway_url}/healthz",
        )
        self.processes["storage"] = ServiceProcess(
            "storage",
            "virga_storage",
            {
                **self._common(),
                "VIRGA_CEPH_CONF": self.ceph_conf,
                "VIRGA_CEPH_POOL": self.ceph_pool,
                **self._ceph_identity(STORAGE_USER),
                "VIRGA_HTTP_PORT": str(self.storage_port),
                "VIRGA_IMAGE_SPOOL_DIR": str(self.run_dir),
            },
            self.run_dir,
            health_url=f"{self.storage_url}/healthz",
        )
        scheduler_port = free_port()
        self.processes["scheduler"] = ServiceProcess(
            "scheduler",
            "virga_scheduler",
            {
                **self._common(),
                "VIRGA_HTTP_PORT": str(scheduler_port),
                "VIRGA_HEARTBEAT_TIMEOUT": str(self.heartbeat_seconds * 10),
            },
            self.run_dir,
            health_url=f"http://127.0.0.1:{scheduler_port}/healthz",
        )
        network_port = free_port()
        self.processes["network"] = ServiceProcess(
            "network",
            "virga_network",
            {**self._common(), "VIRGA_HTTP_PORT": str(network_port)},
            self.run_dir,
            health_url=f"http://127.0.0.1:{network_port}/healthz",
        )
        node = self.run_dir / "test-node.xml"
        node.write_text(TEST_NODE.format(memory_kib=256 * 1024 * 1024))
        for host in self.hosts:
            port = free_port()
            uri = host.libvirt_uri or f"test://{node}"
            self.processes[f"compute-{host.name}"] = ServiceProcess(
                f"compute-{host.name}",
                "virga_compute",
                {
                    **self._common(),
                    "VIRGA_HOST": host.name,
                    "VIRGA_RACK": host.rack,
                    "VIRGA_ZONE": host.zone,
                    "VIRGA_LIBVIRT_URI": uri,
                    "VIRGA_DOMAIN_TYPE": "test" if uri.startswith("test:") else "qemu",
                    "VIRGA_INSTANCES_PATH": str(self.run_dir / "instances" / host.name),
                    "VIRGA_HEARTBEAT_SECONDS": str(self.heartbeat_seconds),
                    "VIRGA_USAGE_SECONDS": "5",
                    "VIRGA_HTTP_PORT": str(port),
                    **self._compute_volumes(uri, host.name),
                    **self.compute_env,
                },
                self.run_dir,
                health_url=f"http://127.0.0.1:{port}/healthz",
            )

        if self.network_agent_prefix is not None:
            host = self.hosts[0]
            agent_port = free_port()
            self.processes[f"network-agent-{host.name}"] = ServiceProcess(
                f"network-agent-{host.name}",
                "virga_network.agent",
                {
                    **self._common(),
                    "VIRGA_HOST": host.name,
                    "VIRGA_VTEP_IP": "127.0.0.1",
                    "VIRGA_NETWORK_IFACE_PREFIX": self.network_agent_prefix,
                    "VIRGA_NETWORK_TAP_KIND": "veth",
                    "VIRGA_NETWORK_EDGE": "on" if self.network_agent_edge else "off",
                    "VIRGA_HTTP_PORT": str(agent_port),
                },
                self.run_dir,
                health_url=f"http://127.0.0.1:{agent_port}/healthz",
            )
        if self.billing:
            billing_port = free_port()
            self.processes["billing"] = ServiceProcess(
                "billing",
                "virga_billing",
                {**self._common(), "VIRGA_HTTP_PORT": str(billing_port)},
                self.run_dir,
                health_url=f"http://127.0.0.1:{billing_port}/healthz",
            )

    def _ceph_identity(self, user: str) -> dict[str, str]:
        """VIRGA_CEPH_USER and VIRGA_CEPH_KEYRING of a service that would be `user`."""
        if self.ceph_cluster is None:
            return {"VIRGA_CEPH_USER": "admin", "VIRGA_CEPH_KEYRING": self.ceph_keyring}
        keyring = client_keyring(self.ceph_cluster, user)
        return {"VIRGA_CEPH_USER": user, "VIRGA_CEPH_KEYRING": str(keyring)}

    def _compute_volumes(self, uri: str, host: str) -> dict[str, str]:
        """Where an agent's guests find their volumes (and, under QEMU, their kernel)."""
        if self.ceph_conf == "memory://":
            # Volumes live in the storage process: a test hypervisor only records the disks.
            env = {"VIRGA_CEPH_MONITORS": "127.0.0.1:6789", "VIRGA_CEPH_USER": "none"}
        else:
            env = {
                "VIRGA_CEPH_CONF": self.ceph_conf,
                "VIRGA_CEPH_POOL": self.ceph_pool,
                **self._ceph_identity(compute_user(host)),
            }
        if self.guest_kernel is not None and not uri.startswith("test:"):
            kernel, initrd, cmdline = self.guest_kernel
            env |= {
                "VIRGA_GUEST_KERNEL": kernel,
                "VIRGA_GUEST_INITRD": initrd,
                "VIRGA_GUEST_CMDLINE": cmdline,
            }
        return env

    def add_host_topics(self) -> None:
        """Make every host's topics first, as `virga host add` does before its agents start:
        services then read them from their start instead of finding them seconds later (a
        scheduler that had not yet would refuse a request for want of hosts the gateway lists)."""
        settings = KafkaSettings.from_env(environ=self._common())

        async def add_all() -> None:
            for host in self.hosts:
                await add_host_topics(settings, host.name)

        # A thread of its own: the caller may be inside a running event loop.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, add_all()).result(timeout=120)

    def start(self) -> None:
        if not self.processes:
            self.build()
        if not self.host_topics_added:
            self.add_host_topics()
            self.host_topics_added = True
        if self.external is not None:
            external.ensure_bridge(self.external)
        for process in self.processes.values():
            process.start()
        for process in self.processes.values():
            process.wait_healthy(timeout=90)
        self.wait_hosts_registered()
        if self.external is not None:
            self.external_network_id, _ = external.register(
                self.gateway_url, self.admin_token, self.external
            )

    def wait_hosts_registered(self, timeout: float = 60) -> None:
        """Until the gateway lists every compute host as up. An agent reports healthy once
        it caught up with the log and registers its host just after: a request sent in
        between would find no host."""
        wanted = {host.name for host in self.hosts}
        request = urllib.request.Request(
            f"{self.gateway_url}/v1/hosts?limit=100",
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )
        deadline = time.monotonic() + timeout
        listed: set[str] = set()
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                with urllib.request.urlopen(request, timeout=5) as answer:
                    items = json.load(answer)["items"]
                listed = {item["name"] for item in items if item["state"] == "up"}
                if wanted <= listed:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"hosts {sorted(wanted - listed)} never registered:\n{self.logs()}")

    def stop(self) -> None:
        """Every service at once: each snapshots and exits on its own."""
        processes = list(self.processes.values())
        if processes:
            with concurrent.futures.ThreadPoolExecutor(len(processes)) as pool:
                for stopped in [pool.submit(process.stop) for process in processes]:
                    stopped.result()
        if self.external is not None:
            external.remove_bridge(self.external)

    @contextlib.contextmanager
    def running(self) -> Iterator[Stack]:
        """The stack started for the block and stopped after it; the services' logs are
        printed if starting (or the block) fails."""
        try:
            self.start()
            yield self
        except Exception:
            print(self.logs())
            raise
        finally:
            self.stop()

    def restart(self, name: str) -> None:
        process = self.processes[name]
        process.start()
        process.wait_healthy(timeout=90)

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{p.log_tail(15)}" for name, p in self.processes.items())
