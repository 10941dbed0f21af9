"""What the log wants plumbed on this host, as a pure function of the agent's state.

The agent converges on this plan (level-triggered) rather than reacting to each event: the
controller's events arrive on the topic the agent itself writes, which the runtime folds but
never decides on, and a plan computed from the whole state is also what a restart needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from virga_events.catalog.network import (
    SecurityGroupRule,
    default_security_group_id,
    default_security_group_rules,
)
from virga_network.agent.core import dvr, l3, migration, names
from virga_network.agent.core.edge import edge_plumbing
from virga_network.agent.core.model import NetworkAgentState, PortRecord
from virga_network.agent.core.plumbing import (
    FilterRule,
    FilterSet,
    NetworkPlumbing,
    PortFilter,
    RemotePort,
    RouterPlumbing,
    TunnelFilter,
)
from virga_network.agent.core.plumbing import zone as zone


@dataclass(frozen=True, slots=True)
class PortPlan:
    """A port to plug in here, and whether its PortBound is still to be reported."""

    port_id: str
    tenant_id: str | None
    network_id: str
    bridge: str
    filter: PortFilter
    instance_id: str | None
    report: bool
    prepared: bool = False
    """Plumbed for a migration coming here, not bound (`core.migration`): never reported,
    no floating IP NATed to it here."""


@dataclass(frozen=True, slots=True)
class Unbind:
    """A port this host reported bound that the log no longer wants here."""

    port_id: str
    tenant_id: str | None


@dataclass(frozen=True, slots=True)
class HostPlan:
    host: str
    vtep_ip: str
    networks: tuple[NetworkPlumbing, ...]
    ports: tuple[PortPlan, ...]
    unbind: tuple[Unbind, ...]
    routers: tuple[RouterPlumbing, ...] = ()
    """This host's routers (`core.l3`): made after the networks and ports they serve."""
    confirm: tuple[l3.FloatingReport, ...] = ()
    """Floating IPs the routers NAT that are still to be reported plumbed (`l3.reports`)."""
    unplumb: tuple[l3.FloatingReport, ...] = ()
    """Floating IPs reported plumbed here that the routers no longer NAT."""
    migrations: tuple[migration.MigrationAnswer, ...] = ()
    """Answers due to the scheduler's migration requests (`core.migration.answers`)."""
    arrivals: tuple[migration.Arrival, ...] = ()
    """Migrations coming here whose guest is awaited on its taps (`core.migration.arrivals`)."""

    def filters(self, failed_networks: frozenset[str] = frozenset()) -> FilterSet:
        """The host's filters: of every port outside `failed_networks`."""
        return FilterSet(
            ports=tuple(p.filter for p in self.ports if p.network_id not in failed_networks),
            uplinks=tuple(
                (name, zone(n.vni))
                for n in self.networks
                if n.network_id not in failed_networks
                for name in (n.vxlan, *((n.edge.veth,) if n.edge is not None else ()))
            )
            + tuple(
                (veth, leg.zone)
                for r in self.routers
                for leg in r.interfaces
                if leg.network_id not in failed_networks
                for veth in leg.veths()
            ),
            tunnels=tuple(
                TunnelFilter(vxlan=n.vxlan, vni=n.vni, remotes=n.remotes)
                for n in self.networks
                if n.network_id not in failed_networks
            ),
            routed=tuple(
                (leg.veth, leg.routed_mac)
                for r in self.routers
                for leg in r.interfaces
                if leg.network_id not in failed_networks and leg.routed_mac
            ),
        )


def _rules(
    state: NetworkAgentState, port: PortRecord, known_only: bool = False
) -> tuple[SecurityGroupRule, ...] | None:
    """The port's rules, or None while one of its groups is not known yet; `known_only`: the
    rules of the groups known, what an unknown one would allow being dropped meanwhile."""
    rules: list[SecurityGroupRule] = []
    for group_id in port.security_groups:
        group = state.groups.get(group_id)
        if group is not None:
            rules.extend(group.rules)
        elif port.tenant_id is not None and group_id == default_security_group_id(port.tenant_id):
            rules.extend(default_security_group_rules(group_id))
        elif not known_only:
            return None
    return tuple(rules)


def _members(state: NetworkAgentState, group_id: str) -> tuple[str, ...]:
    return tuple(
        sorted(
            ip
            for port in state.ports.values()
            if not port.deleted and group_id in port.security_groups
            for ip in port.ips
        )
    )


def _resolve(state: NetworkAgentState, rule: SecurityGroupRule) -> FilterRule:
    remote: tuple[str, ...] | None = None
    if rule.remote_group is not None:
        remote = _members(state, rule.remote_group)
    elif rule.remote_cidr is not None:
        remote = (rule.remote_cidr,)
    return FilterRule(
        direction=rule.direction,
        ethertype=rule.ethertype,
        protocol=rule.protocol,
        port_min=rule.port_min,
        port_max=rule.port_max,
        remote=remote,
    )


def _plumbable(state: NetworkAgentState, port: PortRecord) -> bool:
    return not port.deleted and port.mac is not None and port.network_id in state.networks


def _wanted(state: NetworkAgentState, port: PortRecord, moved: dict[str, str]) -> bool:
    """Whether the port is to be bound here: assigned here, or its guest moved here
    (`migration.moved`: before the controller's assignment follows)."""
    return (
        moved.get(port.port_id, port.host) == state.host
        and not port.deleted
        and port.mac is not None
        and port.network_id in state.networks
        and port.failed_assignment != port.assignment
    )


def _network(
    state: NetworkAgentState,
    network_id: str,
    prefix: str,
    local: list[tuple[str, str]] | None,
    router: str | None = None,
    moved: dict[str, str] | None = None,
) -> NetworkPlumbing:
    """The network's plumbing; `local`: its ports here as (MAC, IPv4) for its edge, None for
    no edge; `router`: the link-local address of its router's leg here (IPv6); `moved`: ports
    whose guest moved (`migration.moved`), forwarded to where it runs now."""
    flood: set[str] = set()
    fdb: set[tuple[str, str]] = set()
    remotes: set[RemotePort] = set()
    for port in state.ports.values():
        host = (moved or {}).get(port.port_id, port.bound_host)
        if port.network_id != network_id or host is None or host == state.host:
            continue
        vtep = state.vteps.get(host)
        if vtep is None:
            continue  # its agent has not registered yet: nowhere to send to
        flood.add(vtep)
        if port.mac is not None:
            fdb.add((port.mac, vtep))
            remotes.add(RemotePort(mac=port.mac, vtep=vtep, ips=port.ips))
    for remote in l3.snat_remotes(state, network_id):
        fdb.add((remote.mac, remote.vtep))
        remotes.add(remote)
    # Other hosts' routers' routed frames (nothing is sent to their MACs: no fdb entry).
    remotes.update(dvr.routed_remotes(state, network_id))
    return NetworkPlumbing(
        network_id=network_id,
        vni=state.networks[network_id].vni,
        bridge=names.bridge_name(network_id, prefix),
        vxlan=names.vxlan_name(network_id, prefix),
        flood=tuple(sorted(flood)),
        fdb=tuple(sorted(fdb)),
        remotes=tuple(sorted(remotes, key=lambda r: (r.mac, r.vtep, r.ips, r.routed, r.forwarded))),
        edge=None if local is None else edge_plumbing(state, network_id, prefix, local, router),
    )


def _local_v4(ports: list[PortPlan]) -> dict[str, list[tuple[str, str]]]:
    """Network -> its ports here as (MAC, IPv4)."""
    local: dict[str, list[tuple[str, str]]] = {}
    for port in ports:
        pairs = local.setdefault(port.network_id, [])
        pairs += [(port.filter.mac, ip) for ip in port.filter.ips if ":" not in ip]
    return local


def host_plan(state: NetworkAgentState, vtep_ip: str, prefix: str, edges: bool = False) -> HostPlan:
    """Everything this host should have, given the log so far; `edges`: with an edge (DHCP,
    metadata: `core.edge`) on each IPv4 network."""
    ports: list[PortPlan] = []
    coming, moved = migration.prepared(state), migration.moved(state)
    for port in sorted(state.ports.values(), key=lambda p: p.port_id):
        prepared = not _wanted(state, port, moved)
        if prepared and not (port.port_id in coming and _plumbable(state, port)):
            continue
        rules = _rules(state, port)
        if rules is None and port.bound_host != state.host:
            continue  # a group the agent has not read yet: bind once it has
        if rules is None:
            # Bound here, then given a group not read yet (another partition of `<ns>.api`),
            # or named a group whose deletion came first: the port keeps its tap, with only
            # what the groups known allow, until the log catches up.
            rules = _rules(state, port, known_only=True)
        assert rules is not None
        assert port.network_id is not None
        assert port.mac is not None
        tap = names.tap_name(port.port_id, prefix)
        network = state.networks[port.network_id]
        port_filter = PortFilter(
            tap=tap,
            mac=port.mac,
            ips=port.ips,
            zone=zone(network.vni),
            rules=tuple(_resolve(state, rule) for rule in rules),
        )
        ports.append(
            PortPlan(
                port_id=port.port_id,
                tenant_id=port.tenant_id,
                network_id=port.network_id,
                bridge=names.bridge_name(port.network_id, prefix),
                filter=port_filter,
                instance_id=port.instance_id,
                # Reported once the controller assigned it here (a moved guest's port is
                # bound here before: `migration.moved`).
                report=not prepared
                and port.host == state.host
                and (port.bound_host != state.host or port.tap != tap),
                prepared=prepared,
            )
        )
    wanted = {p.port_id for p in ports}
    unbind = tuple(
        Unbind(port.port_id, port.tenant_id)
        for port in sorted(state.ports.values(), key=lambda p: p.port_id)
        if port.bound_host == state.host
        and port.port_id not in wanted
        and not _wanted(state, port, moved)
    )
    local = _local_v4(ports)
    bound = {p.port_id: (p.network_id, p.filter.ips) for p in ports if not p.prepared}
    routers = l3.routers(state, bound, prefix)
    confirm, unplumb = l3.reports(state, routers)
    # An IPv6 network's edge names the router whose leg is here as the default router.
    default = {leg.network_id: leg.link_local for r in routers for leg in r.interfaces}
    # The networks with ports here, and those of the routers here (`core.dvr`: the source
    # host routes; an edge only where there are ports to serve).
    wanted = set(local) | set(default)
    return HostPlan(
        host=state.host,
        vtep_ip=vtep_ip,
        networks=tuple(
            _network(
                state,
                n,
                prefix,
                local[n] if edges and n in local else None,
                default.get(n) or None,
                moved,
            )
            for n in sorted(wanted)
        ),
        ports=tuple(ports),
        unbind=unbind,
        routers=routers,
        confirm=confirm,
        unplumb=unplumb,
        migrations=migration.answers(state, (p.port_id for p in ports)),
        arrivals=migration.arrivals(state, {p.port_id: p.filter.tap for p in ports if p.prepared}),
    )
