"""What the network controller knows, folded from the log: networks, ports, and who holds
which VXLAN id, MAC and address.

Whether a network or port exists comes only from the controller's own outcome events; inputs
only record what decisions need later (security groups, placements, deleted instances). A
rebuild folds its topics' partitions in no set order, so a freed id or address may be folded
after the allocation that reused it: each id, MAC and address keeps the list of its holders
and is free only when that list is empty, whatever the order.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

import msgspec

from virga_events import Envelope
from virga_events.catalog.compute import InstanceDeleted
from virga_events.catalog.network import (
    NetworkCreated,
    NetworkCreationFailed,
    NetworkDeleted,
    PortAllocated,
    PortAllocationFailed,
    PortDeleted,
    PortHostAssigned,
    SecurityGroupCreated,
    SecurityGroupDeleted,
)
from virga_events.catalog.scheduler import InstanceScheduled
from virga_ipam import Subnet, parse_subnet

TOMBSTONE_LIMIT = 10_000
"""Bound of each deleted-ids set, oldest dropped first (they only outlive late duplicates)."""

K = TypeVar("K", int, str)


class NetworkRecord(msgspec.Struct, kw_only=True):
    """One network; a stub until its NetworkCreated is folded (its ports may come first)."""

    network_id: str
    tenant_id: str | None = None
    created: bool = False
    name: str = ""
    cidr: str = ""
    vni: int = 0
    pools: list[tuple[int, int]] = msgspec.field(default_factory=list)
    """Inclusive offset ranges addresses are handed out from."""
    used: dict[int, list[str]] = msgspec.field(default_factory=dict)
    """Offset -> the ports holding it (one, except transiently while rebuilding)."""
    high_water: int = -1
    """The highest offset ever handed out on this network."""
    in_use_below: int = 0
    """Every pool offset below it is in use: where the search for a freed address starts.
    Its value depends on the fold order, but decisions do not (see `ipam.next_free`)."""
    early_ips: list[str] = msgspec.field(default_factory=list)
    """Addresses of ports folded before the network (a rebuild), deleted ones included: the
    high-water mark counts them once the CIDR is known."""
    ports: dict[str, None] = msgspec.field(default_factory=dict)
    """Ids of its live ports (an ordered set)."""


class PortRecord(msgspec.Struct, kw_only=True):
    """One allocated port."""

    port_id: str
    tenant_id: str | None
    network_id: str
    mac: str
    ips: list[str]
    security_groups: list[str]
    instance_id: str | None = None
    host: str | None = None
    """The host it was last assigned to (PortHostAssigned)."""


class Placement(msgspec.Struct, frozen=True):
    attempt: int
    host: str


class NetworkState(msgspec.Struct, kw_only=True):
    networks: dict[str, NetworkRecord] = msgspec.field(default_factory=dict)
    ports: dict[str, PortRecord] = msgspec.field(default_factory=dict)
    vnis: dict[int, list[str]] = msgspec.field(default_factory=dict)
    """VXLAN id -> the networks holding it."""
    macs: dict[str, list[str]] = msgspec.field(default_factory=dict)
    """MAC -> the ports holding it."""
    security_groups: dict[str, str | None] = msgspec.field(default_factory=dict)
    """Security group id -> its tenant (the default groups are implicit, see the catalog)."""
    placements: dict[str, Placement] = msgspec.field(default_factory=dict)
    """Instance id -> its newest placement, for its port's host."""
    deleted_networks: dict[str, None] = msgspec.field(default_factory=dict)
    deleted_ports: dict[str, None] = msgspec.field(default_factory=dict)
    deleted_instances: dict[str, None] = msgspec.field(default_factory=dict)
    refused: dict[str, None] = msgspec.field(default_factory=dict)
    """Ids of networks and ports whose creation failed: their request decides nothing again."""


def network_record(state: NetworkState, network_id: str) -> NetworkRecord:
    record = state.networks.get(network_id)
    if record is None:
        record = state.networks[network_id] = NetworkRecord(network_id=network_id)
    return record


def _claim(table: dict[K, list[str]], key: K, holder: str) -> None:
    holders = table.setdefault(key, [])
    if holder not in holders:
        holders.append(holder)


def _release(table: dict[K, list[str]], key: K, holder: str) -> None:
    holders = table.get(key)
    if holders is not None and holder in holders:
        holders.remove(holder)
        if not holders:
            del table[key]


def _bounded_add(table: dict[str, None], key: str) -> None:
    table.pop(key, None)
    table[key] = None
    while len(table) > TOMBSTONE_LIMIT:
        del table[next(iter(table))]


@functools.lru_cache(maxsize=4096)
def subnet_of(cidr: str) -> Subnet:
    """The parsed subnet of a CIDR the log holds (cached: ports of a network share it)."""
    return parse_subnet(cidr)


def _claim_addresses(network: NetworkRecord, port: PortRecord) -> None:
    subnet = subnet_of(network.cidr)
    for ip in port.ips:
        offset = subnet.offset(ip)
        _claim(network.used, offset, port.port_id)
        network.high_water = max(network.high_water, offset)
        while network.in_use_below in network.used:
            network.in_use_below += 1


def _network_created(state: NetworkState, env: Envelope, event: NetworkCreated) -> None:
    if env.aggregate_id in state.deleted_networks:
        return
    record = network_record(state, env.aggregate_id)
    if record.created:
        return
    subnet = subnet_of(event.cidr)
    record.created, record.tenant_id = True, env.tenant_id
    record.name, record.cidr, record.vni = event.name, event.cidr, event.vni
    pairs = [(p.start, p.end) for p in event.allocation_pools]
    record.pools = list(subnet.pools(pairs))
    record.in_use_below = record.pools[0][0]
    _claim(state.vnis, event.vni, record.network_id)
    for port_id in record.ports:  # folded before their network (a rebuild)
        _claim_addresses(record, state.ports[port_id])
    for ip in record.early_ips:
        record.high_water = max(record.high_water, subnet.offset(ip))
    record.early_ips = []


def _network_deleted(state: NetworkState, network_id: str) -> None:
    record = state.networks.pop(network_id, None)
    state.refused.pop(network_id, None)
    _bounded_add(state.deleted_networks, network_id)
    if record is not None and record.created:
        _release(state.vnis, record.vni, network_id)


def _port_allocated(state: NetworkState, env: Envelope, event: PortAllocated) -> None:
    port_id = env.aggregate_id
    if port_id in state.ports or port_id in state.deleted_ports:
        return
    port = state.ports[port_id] = PortRecord(
        port_id=port_id,
        tenant_id=env.tenant_id,
        network_id=event.network_id,
        mac=event.mac,
        ips=list(event.ips),
        security_groups=list(event.security_groups),
        instance_id=event.instance_id,
    )
    _claim(state.macs, event.mac, port_id)
    if event.network_id in state.deleted_networks:
        return  # a rebuild folded the network's deletion first: its addresses are moot
    network = network_record(state, event.network_id)
    network.ports[port_id] = None
    if network.created:
        _claim_addresses(network, port)
    else:
        network.early_ips.extend(event.ips)


def _port_deleted(state: NetworkState, port_id: str) -> None:
    port = state.ports.pop(port_id, None)
    state.refused.pop(port_id, None)
    _bounded_add(state.deleted_ports, port_id)
    if port is None:
        return
    _release(state.macs, port.mac, port_id)
    network = state.networks.get(port.network_id)
    if network is not None:
        network.ports.pop(port_id, None)
        if network.created:
            subnet = subnet_of(network.cidr)
            for ip in port.ips:
                offset = subnet.offset(ip)
                _release(network.used, offset, port_id)
                network.in_use_below = min(network.in_use_below, offset)


def _placed(state: NetworkState, instance_id: str, event: InstanceScheduled) -> None:
    known = state.placements.get(instance_id)
    if known is None or event.attempt >= known.attempt:
        state.placements[instance_id] = Placement(event.attempt, event.host)


def _instance_deleted(state: NetworkState, instance_id: str) -> None:
    _bounded_add(state.deleted_instances, instance_id)
    state.placements.pop(instance_id, None)


def evolve(state: NetworkState, envelope: Envelope) -> NetworkState:
    """Fold one event into the state (pure, deterministic, in any order across aggregates)."""
    event, aggregate = envelope.payload, envelope.aggregate_id
    if isinstance(event, PortAllocated):
        _port_allocated(state, envelope, event)
    elif isinstance(event, PortDeleted):
        _port_deleted(state, aggregate)
    elif isinstance(event, PortHostAssigned):
        port = state.ports.get(aggregate)
        if port is not None:
            port.host = event.host
    elif isinstance(event, PortAllocationFailed | NetworkCreationFailed):
        _bounded_add(state.refused, aggregate)
    elif isinstance(event, NetworkCreated):
        _network_created(state, envelope, event)
    elif isinstance(event, NetworkDeleted):
        _network_deleted(state, aggregate)
    elif isinstance(event, SecurityGroupCreated):
        state.security_groups[aggregate] = envelope.tenant_id
    elif isinstance(event, SecurityGroupDeleted):
        state.security_groups.pop(aggregate, None)
    elif isinstance(event, InstanceScheduled):
        if aggregate not in state.deleted_instances:
            _placed(state, aggregate, event)
    elif isinstance(event, InstanceDeleted):
        _instance_deleted(state, aggregate)
    return state


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(NetworkState)


def snapshot(state: NetworkState) -> str:
    """The state as one JSON string; `restore` is its inverse."""
    return _ENCODER.encode(state).decode()


def restore(value: Any) -> NetworkState:
    return _DECODER.decode(value)


__all__ = ["NetworkState", "evolve", "restore", "snapshot"]
