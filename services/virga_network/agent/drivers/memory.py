"""An in-process network driver: the host's plumbing as dictionaries (unit tests, demos)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from virga_network.agent.core import names
from virga_network.agent.core.plumbing import (
    EdgePlumbing,
    FilterSet,
    NetworkPlumbing,
    RouterPlumbing,
    TapKind,
)
from virga_network.agent.drivers.base import DriverError, HostInventory


@dataclass
class _Vxlan:
    vni: int
    local: str
    bridge: str
    forwarding: frozenset[tuple[str, str]]


@dataclass
class MemoryNetworkDriver:
    """`NetworkDriver` in memory, with the real driver's rules: a tap needs its bridge, a
    VXLAN id must fit 24 bits, removing what is absent is done."""

    prefix: str = names.DEFAULT_PREFIX
    bridges: set[str] = field(default_factory=set)
    vxlans: dict[str, _Vxlan] = field(default_factory=dict)
    taps: dict[str, str] = field(default_factory=dict)
    """Tap -> the bridge it is attached to."""
    filters: FilterSet = field(default_factory=FilterSet)
    fail_ports: set[str] = field(default_factory=set)
    """Taps whose `ensure_port` fails (tests of binding failures)."""
    edges: dict[str, EdgePlumbing] = field(default_factory=dict)
    """Bridge -> its network's edge."""
    fail_routers: set[str] = field(default_factory=set)
    """Router namespaces whose `ensure_router` fails (tests of unconfirmed floating IPs)."""
    routers: dict[str, RouterPlumbing] = field(default_factory=dict)
    """Namespace -> the router made there."""
    frames: dict[str, int] = field(default_factory=dict)
    """Tap -> frames its guest sent (`guest_frames`; set by tests)."""
    calls: int = 0
    """Driver operations carried out (tests of idempotence count them)."""

    async def prepare(self) -> None:
        self.calls += 1

    async def ensure_network(self, network: NetworkPlumbing, vtep_ip: str) -> None:
        self.calls += 1
        if not 0 < network.vni < 1 << 24:
            raise DriverError(f"VXLAN id {network.vni} is out of range")
        self.bridges.add(network.bridge)
        self.vxlans[network.vxlan] = _Vxlan(
            network.vni, vtep_ip, network.bridge, network.forwarding()
        )
        if network.edge is not None:
            self.edges[network.bridge] = network.edge

    async def ensure_port(self, tap: str, bridge: str, *, kind: TapKind | None = None) -> None:
        self.calls += 1
        if tap in self.fail_ports:
            raise DriverError(f"cannot make {tap}")
        if bridge not in self.bridges:
            raise DriverError(f"bridge {bridge} does not exist")
        self.taps[tap] = bridge

    async def apply_filters(self, filters: FilterSet) -> None:
        self.calls += 1
        self.filters = filters

    async def remove_port(self, tap: str) -> None:
        self.calls += 1
        self.taps.pop(tap, None)

    async def remove_network(self, bridge: str, vxlan: str) -> None:
        self.calls += 1
        self.vxlans.pop(vxlan, None)
        self.bridges.discard(bridge)
        self.edges.pop(bridge, None)
        # As in the kernel: ports of a deleted bridge stay, detached.
        for tap, master in list(self.taps.items()):
            if master == bridge:
                self.taps[tap] = ""

    async def ensure_router(self, router: RouterPlumbing) -> None:
        self.calls += 1
        if router.namespace in self.fail_routers:
            raise DriverError(f"cannot make {router.namespace}")
        for leg in router.interfaces:
            if leg.bridge not in self.bridges:
                raise DriverError(f"bridge {leg.bridge} does not exist")
        self.routers[router.namespace] = router

    async def remove_router(self, namespace: str) -> None:
        self.calls += 1
        self.routers.pop(namespace, None)

    def _virga(self, found: Iterable[str]) -> frozenset[str]:
        return frozenset(name for name in found if names.kind_of(name, self.prefix) is not None)

    async def inventory(self) -> HostInventory:
        ports_of: dict[str, set[str]] = {}
        for tap, bridge in self.taps.items():
            if bridge:
                ports_of.setdefault(bridge, set()).add(tap)
        for name, vxlan in self.vxlans.items():
            ports_of.setdefault(vxlan.bridge, set()).add(name)
        return HostInventory(
            bridges=self._virga(self.bridges),
            vxlans=self._virga(self.vxlans),
            taps=self._virga(self.taps),
            filtered=frozenset(port.tap for port in self.filters.ports),
            ports_of={bridge: frozenset(members) for bridge, members in ports_of.items()},
            edges=frozenset(edge.veth for edge in self.edges.values()),
            routers=frozenset(self.routers),
        )

    async def guest_frames(self, tap: str) -> int:
        return self.frames.get(tap, 0) if tap in self.taps else 0

    async def forwarding(self, vxlan: str) -> frozenset[tuple[str, str]]:
        found = self.vxlans.get(vxlan)
        return frozenset() if found is None else found.forwarding

    async def close(self) -> None:
        pass
