"""The world of the L3 tests on several hosts: each host a namespace plumbed by its own netlink
driver from its own fold of the same events, the hosts joined by a VXLAN underlay, an
"internet" namespace switching the hosts' external bridges together, and guests plugged into
the hosts' taps.

A test module keeps its own constants, guests and events; it builds the namespaces with
`host_namespaces`, the running agents with `running_cloud`, and plugs its guests with
`plug_guests`. Its `Cloud` subclasses `HostsCloud` for how it converges."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Protocol, TypeVar

from tests.support.l3 import Log
from tests.support.netns import namespaces, plug_guest, sh, unique
from virga_events.catalog.l3 import ExternalNetworkCreated
from virga_events.catalog.network import NetworkAgentRegistered, SecurityGroupRule
from virga_events.registry import Event
from virga_network.agent.core import names
from virga_network.agent.core.plan import host_plan
from virga_network.agent.drivers.netlink import NetlinkDriver
from virga_network.agent.effects.converge import AgentEffects
from virga_network.agent.effects.intents import Converge


class Pluggable(Protocol):
    """A guest namespace plugged into its host's tap for its port."""

    @property
    def name(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def ip(self) -> str: ...
    @property
    def mac(self) -> str: ...
    @property
    def port_id(self) -> str: ...


G = TypeVar("G", bound=Pluggable)
C = TypeVar("C", bound="HostsCloud")


@dataclass(frozen=True)
class Guest:
    """A guest namespace on `host`, its port `port-<name>`."""

    name: str
    host: str
    ip: str
    mac: str

    @property
    def port_id(self) -> str:
        return f"port-{self.name}"


WEB_RULES = (
    SecurityGroupRule(direction="egress", ethertype="IPv4"),
    SecurityGroupRule(direction="ingress", ethertype="IPv4", protocol="icmp"),
    SecurityGroupRule(direction="ingress", ethertype="IPv4", protocol="tcp", port_min=80),
)
"""Out anywhere; in: pings and TCP port 80."""


def vteps(run: str, count: int = 2) -> dict[str, str]:
    """Host -> VTEP for `count` hosts named a<run>, b<run>, ...; the first by name is a
    router's SNAT host."""
    return {f"{chr(ord('a') + i)}{run}": f"192.0.2.{i + 1}" for i in range(count)}


class _Default(enum.Enum):
    TENANT = enum.auto()


def leftover_namespaces(prefix: str, hosts: Iterable[str], kinds: str = "r") -> set[str]:
    """The namespaces the agents made on `hosts` (routers "r", edges "e": `kinds`)."""
    starts = tuple(f"{prefix}{kind}" for kind in kinds)
    return {
        name
        for name in sh("ip", "netns", "list").stdout.split()
        if name.startswith(starts) and name.endswith(tuple(hosts))
    }


@contextmanager
def host_namespaces(
    prefix: str,
    hosts: dict[str, str],
    guests: Iterable[str],
    internet_gateway: str | None,
    *,
    bridged_underlay: bool = False,
    leftovers: str = "r",
) -> Iterator[dict[str, str]]:
    """Namespaces by role (each host, "internet" unless `internet_gateway` is None, each guest
    by name). The underlay is one veth between two hosts, or with `bridged_underlay` a veth
    from each host to the "under" bridge in "internet"; either way a VTEP address (`hosts`:
    host -> VTEP) at each host's end. Each host has the external bridge `<prefix>brex`, plugged
    into the "seg" bridge in "internet" (holding `internet_gateway`). The agents' namespaces
    (`leftovers`, see `leftover_namespaces`) are deleted at the end."""
    wanted = {host: unique(f"{prefix}h") for host in hosts}
    if internet_gateway is not None:
        wanted["internet"] = unique(f"{prefix}i")
    wanted |= {name: unique(f"{prefix}{name}") for name in guests}
    under, brex, up = f"{prefix}under", f"{prefix}brex", f"{prefix}up"
    with namespaces(list(wanted.values())):
        internet = wanted.get("internet", "")
        if internet_gateway is not None:
            for bridge in ("seg", "under") if bridged_underlay else ("seg",):
                sh("ip", "link", "add", bridge, "type", "bridge", netns=internet)
                sh("ip", "link", "set", bridge, "up", netns=internet)
            sh("ip", "addr", "add", f"{internet_gateway}/24", "dev", "seg", netns=internet)
        if not bridged_underlay:
            host_a, host_b = (wanted[host] for host in sorted(hosts))
            sh("ip", "link", "add", under, "type", "veth", "peer", under, "netns", host_b,
               netns=host_a)  # fmt: skip
        for host, vtep in hosts.items():
            where = wanted[host]
            if bridged_underlay:
                sh("ip", "link", "add", under, "type", "veth", "peer", f"u{host[:8]}",
                   "netns", internet, netns=where)  # fmt: skip
                sh("ip", "link", "set", f"u{host[:8]}", "master", "under", "up", netns=internet)
            sh("ip", "addr", "add", f"{vtep}/24", "dev", under, netns=where)
            sh("ip", "link", "set", under, "up", netns=where)
            sh("ip", "link", "add", brex, "type", "bridge", netns=where)
            sh("ip", "link", "set", brex, "up", netns=where)
            if internet_gateway is not None:
                port = f"x{host[:8]}"
                sh("ip", "link", "add", up, "type", "veth", "peer", port, "netns", internet,
                   netns=where)  # fmt: skip
                sh("ip", "link", "set", up, "master", brex, "up", netns=where)
                sh("ip", "link", "set", port, "master", "seg", "up", netns=internet)
        try:
            yield wanted
        finally:
            for name in leftover_namespaces(prefix, hosts, leftovers):
                sh("ip", "netns", "del", name, check=False)


@dataclass
class HostsCloud:
    """Every host's log (the same events, folded per host), agent effects and driver."""

    prefix: str
    hosts: dict[str, str]
    ns: dict[str, str]
    logs: dict[str, Log]
    effects: dict[str, AgentEffects]
    drivers: dict[str, NetlinkDriver]
    tenant: str | None = None
    edges: bool = False

    def write(
        self, event: Event, aggregate: str, tenant: str | _Default | None = _Default.TENANT
    ) -> None:
        """Written to every host's log; for the cloud's own tenant unless told."""
        owner = self.tenant if isinstance(tenant, _Default) else tenant
        for log in self.logs.values():
            log.write(event, aggregate, owner)

    async def converge_hosts(self) -> list[tuple[str, Event]]:
        """Converge every host once; what one writes every host folds. What each wrote."""
        written: list[tuple[str, Event]] = []
        for host, effects in self.effects.items():
            plan = host_plan(self.logs[host].state, self.hosts[host], self.prefix, edges=self.edges)
            for emit in await effects.converge(Converge(plan)):
                self.write(emit.payload, emit.aggregate_id, emit.tenant_id)
                written.append((host, emit.payload))
        return written

    def register(self, external: str, gateway_ip: str) -> None:
        """Every host's agent, and the external network on the hosts' `<prefix>brex`."""
        for host, vtep in self.hosts.items():
            self.write(NetworkAgentRegistered(vtep_ip=vtep), host, None)
        self.write(
            ExternalNetworkCreated(name="public", cidr="203.0.113.0/24", gateway_ip=gateway_ip,
                                   allocation_pools=(), host_interface=f"{self.prefix}brex"),
            external, None,
        )  # fmt: skip


def _plain_effects(host: str, driver: NetlinkDriver, log: Log) -> AgentEffects:
    return AgentEffects(driver)


@asynccontextmanager
async def running_cloud(
    cloud: type[C],
    prefix: str,
    hosts: dict[str, str],
    ns: dict[str, str],
    tenant: str | None = None,
    *,
    effects: Callable[[str, NetlinkDriver, Log], AgentEffects] = _plain_effects,
    edges: bool = False,
) -> AsyncIterator[C]:
    """A `cloud` of one netlink driver (veth taps) per host, prepared, closed at the end."""
    drivers = {
        host: NetlinkDriver(prefix=prefix, tap_kind="veth", netns=ns[host], host=host)
        for host in hosts
    }
    logs = {host: Log(host) for host in hosts}
    made = {host: effects(host, driver, logs[host]) for host, driver in drivers.items()}
    try:
        for driver in drivers.values():
            await driver.prepare()
        yield cloud(prefix, hosts, ns, logs, made, drivers, tenant, edges)
    finally:
        for driver in drivers.values():
            await driver.close()


def plug_guests(
    cloud: HostsCloud, guests: Iterable[G], via: str | Callable[[G], str] | None
) -> None:
    """Each guest's namespace on its host's tap veth, its default route `via` (None: none)."""
    for g in guests:
        tap = names.tap_name(g.port_id, cloud.prefix)
        plug_guest(cloud.ns[g.host], names.veth_peer(tap), cloud.ns[g.name], g.mac, (g.ip,))
        if via is not None:
            gateway = via if isinstance(via, str) else via(g)
            sh("ip", "route", "add", "default", "via", gateway, netns=cloud.ns[g.name])
