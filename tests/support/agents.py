"""Network agents as processes in host namespaces, and the log they share (Kafka).

`AgentWorld` starts `python -m virga_network.agent` inside a host namespace (`ip netns exec`)
with veth ports, writes the controller's and the gateway's events, and waits for the agents'.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.support.kafka import produce_events, read_events
from virga_events import REGISTRY, Envelope, Event, new_event
from virga_events.catalog.network import NetworkAgentRegistered, PortBound, PortUnbound


class AgentWorld:
    """Agents in host namespaces `ns[host]` with VTEPs `vteps[host]`, one topic namespace."""

    def __init__(
        self,
        bootstrap: str,
        ns: Mapping[str, str],
        vteps: Mapping[str, str],
        prefix: str,
        tmp: Path,
        edge: bool = False,
    ) -> None:
        """`edge`: the agents serve DHCP and metadata (their edges' namespaces are then
        removed by `remove_edges`)."""
        self.edge = edge
        self.bootstrap = bootstrap
        self.topic_ns = f"{prefix}{uuid.uuid4().hex[:8]}"
        self.ns = dict(ns)
        self.vteps = dict(vteps)
        self.prefix = prefix
        self.tmp = tmp
        self.agents: dict[str, subprocess.Popen[bytes]] = {}

    def start_agent(self, host: str) -> None:
        env = {
            **os.environ,
            "VIRGA_HOST": host,
            "VIRGA_VTEP_IP": self.vteps[host],
            "VIRGA_NETWORK_IFACE_PREFIX": self.prefix,
            "VIRGA_NETWORK_TAP_KIND": "veth",
            "VIRGA_NETWORK_SYNC_SECONDS": "0.1",
            "VIRGA_KAFKA_BOOTSTRAP": self.bootstrap,
            "VIRGA_NAMESPACE": self.topic_ns,
            "VIRGA_NETWORK_EDGE": "on" if self.edge else "off",
        }
        with (self.tmp / f"agent-{host}.log").open("ab") as log:
            self.agents[host] = subprocess.Popen(
                ["ip", "netns", "exec", self.ns[host], sys.executable, "-m", "virga_network.agent"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop_agent(self, host: str) -> None:
        process = self.agents.pop(host)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self) -> None:
        for host in list(self.agents):
            self.stop_agent(host)

    def remove_edges(self) -> None:
        """Remove the edges' namespaces the agents made. An agent run with `ip netns exec`
        has a mount namespace of its own, so its `ip netns add` left only an empty file here."""
        netns_dir = Path("/run/netns")
        for path in netns_dir.glob(f"{self.prefix}e*-*") if netns_dir.exists() else ():
            if path.name.rsplit("-", 1)[1] in self.vteps:
                subprocess.run(["umount", str(path)], capture_output=True, check=False)
                path.unlink(missing_ok=True)

    def topic(self, service: str) -> str:
        return f"{self.topic_ns}.{service}"

    def write(self, service: str, *events: tuple[Event, str, str | None]) -> None:
        producer = "gateway" if service == "api" else "network"
        envelopes = [
            new_event(payload, aggregate_id=key, tenant_id=tenant, producer=producer)
            for payload, key, tenant in events
        ]
        asyncio.run(produce_events(self.bootstrap, self.topic(service), envelopes))

    def events(self) -> list[Envelope]:
        return asyncio.run(read_events(self.bootstrap, self.topic("network"), REGISTRY))

    def wait_for(
        self, what: str, found: Callable[[list[Envelope]], bool], timeout: float = 40
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for host, process in self.agents.items():
                if process.poll() is not None:
                    pytest.fail(f"agent {host} exited: {self.log(host)}")
            with contextlib.suppress(Exception):
                if found(self.events()):
                    return
            time.sleep(0.2)
        logs = " ".join(self.log(host) for host in self.ns if host in self.vteps)
        pytest.fail(f"timed out waiting for {what}; logs: {logs}")

    def log(self, host: str) -> str:
        path = self.tmp / f"agent-{host}.log"
        return path.read_text()[-3000:] if path.exists() else ""


def registered(hosts: set[str]) -> Callable[[list[Envelope]], bool]:
    def found(envelopes: list[Envelope]) -> bool:
        agents = {
            e.aggregate_id for e in envelopes if isinstance(e.payload, NetworkAgentRegistered)
        }
        return agents >= hosts

    return found


def bound(envelopes: list[Envelope], port_id: str, host: str) -> bool:
    return any(
        isinstance(e.payload, PortBound) and e.aggregate_id == port_id and e.payload.host == host
        for e in envelopes
    )


def unbound(envelopes: list[Envelope], port_id: str) -> bool:
    return any(isinstance(e.payload, PortUnbound) and e.aggregate_id == port_id for e in envelopes)
