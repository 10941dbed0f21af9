"""A whole Virga stack over two libvirt hosts of the test's own (`libvirt_hosts`), for live
migration end to end: the services as processes on the test broker and Ceph, a compute agent
per host (its libvirtd's socket; the peer URI and migration address other hosts reach it at)
and a network agent per host, run inside that host's network namespace (`ip netns exec`), so
its taps, bridges and VXLAN devices are where that host's QEMU opens them, and its VXLAN
underlay is the hosts' own network (their bridges joined through the hub namespace).

A host's network namespace is held by a process (`virga_devstack.libvirt_host`); it is given a
name (`ip netns attach`) for the agents and the tests, removed at the end. The broker listens
on the root namespace's loopback: a relay (`KafkaRelay`) makes it reachable at the same
address inside each host.

`PingWatch` pings an address continuously from a namespace and tells the gaps between
answers: what a guest's move costs its network.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import libvirt

from tests.support.api import Api
from tests.support.kafka import read_events
from tests.support.libvirt_hosts import libvirt_hosts
from tests.support.netns import KafkaRelay, sh
from tests.support.stack import HostSpec, Stack, on_ceph
from virga_devstack.ceph import CephCluster
from virga_devstack.libvirt_host import LibvirtHost
from virga_eventlog import event_topic
from virga_events import REGISTRY
from virga_events.catalog.network import NetworkAgentRegistered


@dataclass
class MigrationStack:
    stack: Stack
    hosts: dict[str, LibvirtHost]
    """Virga host name -> its libvirt host."""
    netns: dict[str, str]
    """Virga host name -> the name of its network namespace."""
    agents: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def agent_log(self, host: str) -> str:
        path = self.stack.run_dir / f"network-agent-{host}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def _attach(name: str, host: LibvirtHost) -> None:
    holder = int(Path(host.directory, "holder.pid").read_text())
    sh("ip", "netns", "attach", name, str(holder))


def _start_agent(lab: MigrationStack, host: str, prefix: str) -> None:
    env = {
        **os.environ,
        "VIRGA_KAFKA_BOOTSTRAP": lab.stack.bootstrap,
        "VIRGA_NAMESPACE": lab.stack.namespace,
        "VIRGA_LOG_FORMAT": "json",
        "VIRGA_HOST": host,
        "VIRGA_VTEP_IP": lab.hosts[host].address,
        "VIRGA_NETWORK_IFACE_PREFIX": prefix,
        "VIRGA_NETWORK_TAP_KIND": "veth",  # other ports: a namespace takes the peer
        "VIRGA_NETWORK_EDGE": "off",  # the Virga guest reads its address from fw_cfg
        "VIRGA_NETWORK_SYNC_SECONDS": "0.1",
    }
    with (lab.stack.run_dir / f"network-agent-{host}.log").open("ab") as log:
        lab.agents[host] = subprocess.Popen(
            ["ip", "netns", "exec", lab.netns[host], sys.executable, "-m", "virga_network.agent"],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip


def _stop_agent(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _wait_registered(lab: MigrationStack, timeout: float = 90) -> None:
    topic = event_topic("network", lab.stack.namespace)
    deadline = time.monotonic() + timeout
    while True:
        for host, process in lab.agents.items():
            if process.poll() is not None:
                raise RuntimeError(f"network agent {host} exited:\n{lab.agent_log(host)}")
        events = asyncio.run(read_events(lab.stack.bootstrap, topic, REGISTRY))
        registered = {
            e.aggregate_id for e in events if isinstance(e.payload, NetworkAgentRegistered)
        }
        if registered >= set(lab.agents):
            return
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {h}\n{lab.agent_log(h)}" for h in lab.agents)
            raise TimeoutError(f"network agents never registered:\n{logs}")
        time.sleep(0.3)


@contextlib.contextmanager
def migration_stack(
    bootstrap: str,
    cluster: CephCluster,
    run_dir: Path,
    hosts: dict[str, tuple[str, LibvirtHost]],
    prefix: str,
) -> Iterator[MigrationStack]:
    """The stack over `hosts` (Virga name -> (rack, libvirt host)), with both agents of each
    host; everything stopped and the namespaces' names removed at the end."""
    specs = tuple(HostSpec(name, rack, libvirt_uri=h.uri) for name, (rack, h) in hosts.items())
    stack = Stack(bootstrap, run_dir, specs, **on_ceph(cluster))
    stack.build()
    for name, (_, host) in hosts.items():
        stack.processes[f"compute-{name}"].env |= {
            "VIRGA_MIGRATION_URI": host.peer_uri,  # reached from the source's libvirtd
            "VIRGA_MIGRATION_ADDRESS": host.migration_address,
            "VIRGA_MIGRATION_TIMEOUT_SECONDS": "120",
        }
    netns = {
        name: f"{prefix}h{host.index}{os.getpid() % 10000}" for name, (_, host) in hosts.items()
    }
    lab = MigrationStack(stack, {n: h for n, (_, h) in hosts.items()}, netns)
    attached: list[str] = []
    port = int(bootstrap.rsplit(":", 1)[1])
    try:
        for name, ns in netns.items():
            _attach(ns, lab.hosts[name])
            attached.append(ns)
        with KafkaRelay(port, list(netns.values())), stack.running():
            try:
                for name in hosts:
                    _start_agent(lab, name, prefix)
                _wait_registered(lab)
                yield lab
            finally:
                for process in lab.agents.values():
                    _stop_agent(process)
    finally:
        for ns in attached:
            sh("ip", "netns", "delete", ns, check=False)


_REPLY = re.compile(r"^\[(\d+\.\d+)\] .*icmp_seq=(\d+) ")


@contextlib.contextmanager
def two_host_lab(
    kafka_bootstrap: str,
    ceph: CephCluster,
    run_dir: Path,
    names: tuple[str, str],
    prefix: str,
) -> Iterator[MigrationStack]:
    """Two new libvirt hosts, in racks rack-1 and rack-2, and the whole stack over them."""
    with libvirt_hosts(2, ceph) as (a, b):
        hosts = {names[0]: ("rack-1", a), names[1]: ("rack-2", b)}
        with migration_stack(kafka_bootstrap, ceph, run_dir, hosts, prefix) as lab:
            yield lab


@contextlib.asynccontextmanager
async def lab_clients(
    lab: MigrationStack, tenant_prefix: str
) -> AsyncIterator[tuple[Api, Api, str]]:
    """(admin, a new tenant, its id) on the lab's API."""
    stack = lab.stack
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        admin = Api(session, stack.gateway_url, stack.admin_token)
        tenant_id, token = await admin.create_tenant(f"{tenant_prefix}-{uuid.uuid4().hex[:6]}")
        yield admin, admin.as_token(token), tenant_id


def domains(host: LibvirtHost, *, active: bool = False) -> set[str]:
    """The names of the host's domains (only the running ones if `active`)."""
    connection = libvirt.open(host.uri)
    try:
        return {d.name() for d in connection.listAllDomains() if d.isActive() or not active}
    finally:
        connection.close()


class PingWatch:
    """`ping -D -i interval` from `netns` to `ip`, read as it goes: when each reply came."""

    def __init__(self, netns: str, ip: str, interval: float = 0.05) -> None:
        self.interval = interval
        self.replies: list[tuple[float, int]] = []
        """(wall time, icmp_seq) of each reply, in order."""
        self._process = subprocess.Popen(
            ["ip", "netns", "exec", netns, "ping", "-D", "-n", "-i", str(interval), ip],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if found := _REPLY.match(line):
                with self._lock:
                    self.replies.append((float(found[1]), int(found[2])))

    def answered_after(self, moment: float) -> bool:
        with self._lock:
            return bool(self.replies) and self.replies[-1][0] > moment

    def window(self, start: float, end: float) -> tuple[float, float, int]:
        """The longest gap between replies from `start` to `end` (wall times): when it began
        and how long it was; and how many requests sent in that time got no reply."""
        with self._lock:
            inside = [(t, seq) for t, seq in self.replies if start <= t <= end]
        if len(inside) < 2:
            return start, end - start, int((end - start) / self.interval)
        began, gap = max(((a[0], b[0] - a[0]) for a, b in itertools.pairwise(inside)),
                         key=lambda pair: pair[1])  # fmt: skip
        sent = inside[-1][1] - inside[0][1] + 1
        return began, gap, sent - len({seq for _, seq in inside})

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
        self._reader.join(5)
        if self._process.stdout is not None:
            self._process.stdout.close()
