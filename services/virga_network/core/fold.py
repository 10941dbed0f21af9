"""The network controller's fold: what each event of the log does to its `NetworkState`.

Whether a network or port exists comes only from the controller's own outcome events; inputs
only record what decisions need later (security groups, placements, deleted instances). A
rebuild folds its topics' partitions in no set order, so a freed id or address may be folded
after the allocation that reused it: each id, MAC and address keeps the list of its holders
and is free only when that list is empty, whatever the order.

`evolve` folds one event into the state (pure, deterministic, in any order across aggregates).
"""

from __future__ import annotations

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
from virga_events.catalog.scheduler import InstanceScheduled, MigrationPortSwitchRequested
from virga_network.core import l3_fold
from virga_network.core.holders import TOMBSTONE_LIMIT
from virga_network.core.holders import bounded_add as _bounded_add
from virga_network.core.holders import claim as _claim
from virga_network.core.holders import release as _release
from virga_network.core.model import NetworkRecord, NetworkState, Placement, PortRecord, subnet_of
from virga_runtime.folding import Folds

__all__ = ["TOMBSTONE_LIMIT", "evolve", "folds", "network_record"]

folds: Folds[NetworkState] = Folds()


def network_record(state: NetworkState, network_id: str) -> NetworkRecord:
    record = state.networks.get(network_id)
    if record is None:
        record = state.networks[network_id] = NetworkRecord(network_id=network_id)
    return record


def _claim_addresses(network: NetworkRecord, port: PortRecord) -> None:
    for ip in port.ips:
        l3_fold.claim_address(network, port.port_id, ip)


@folds.on(NetworkCreated)
def _network_created(state: NetworkState, envelope: Envelope, event: NetworkCreated) -> None:
    if envelope.aggregate_id in state.deleted_networks:
        return
    record = network_record(state, envelope.aggregate_id)
    if record.created:
        return
    subnet = subnet_of(event.cidr)
    record.created, record.tenant_id = True, envelope.tenant_id
    record.name, record.cidr, record.vni = event.name, event.cidr, event.vni
    pairs = [(p.start, p.end) for p in event.allocation_pools]
    record.pools = list(subnet.pools(pairs))
    record.in_use_below = record.pools[0][0]
    _claim(state.vnis, event.vni, record.network_id)
    for port_id in record.ports:  # folded before their network (a rebuild)
        _claim_addresses(record, state.ports[port_id])
    for holder, ip in record.held.items():
        l3_fold.claim_address(record, holder, ip)
    for ip in record.early_ips:
        record.high_water = max(record.high_water, subnet.offset(ip))
    record.early_ips = []


@folds.on(NetworkDeleted)
def _network_deleted(state: NetworkState, envelope: Envelope, event: NetworkDeleted) -> None:
    network_id = envelope.aggregate_id
    record = state.networks.pop(network_id, None)
    state.refused.pop(network_id, None)
    _bounded_add(state.deleted_networks, network_id)
    if record is not None and record.created:
        _release(state.vnis, record.vni, network_id)


@folds.on(PortAllocated)
def _port_allocated(state: NetworkState, envelope: Envelope, event: PortAllocated) -> None:
    port_id = envelope.aggregate_id
    if port_id in state.ports or port_id in state.deleted_ports:
        return
    port = state.ports[port_id] = PortRecord(
        port_id=port_id,
        tenant_id=envelope.tenant_id,
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


@folds.on(PortDeleted)
def _port_deleted(state: NetworkState, envelope: Envelope, event: PortDeleted) -> None:
    port_id = envelope.aggregate_id
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


@folds.on(PortHostAssigned)
def _port_host_assigned(state: NetworkState, envelope: Envelope, event: PortHostAssigned) -> None:
    port = state.ports.get(envelope.aggregate_id)
    if port is not None:
        port.host = event.host


def _refused(
    state: NetworkState,
    envelope: Envelope,
    event: PortAllocationFailed | NetworkCreationFailed,
) -> None:
    _bounded_add(state.refused, envelope.aggregate_id)


folds.add(PortAllocationFailed, _refused)
folds.add(NetworkCreationFailed, _refused)


@folds.on(SecurityGroupCreated)
def _security_group_created(
    state: NetworkState, envelope: Envelope, event: SecurityGroupCreated
) -> None:
    state.security_groups[envelope.aggregate_id] = envelope.tenant_id


@folds.on(SecurityGroupDeleted)
def _security_group_deleted(
    state: NetworkState, envelope: Envelope, event: SecurityGroupDeleted
) -> None:
    state.security_groups.pop(envelope.aggregate_id, None)


@folds.on(InstanceScheduled)
def _placed(state: NetworkState, envelope: Envelope, event: InstanceScheduled) -> None:
    instance_id = envelope.aggregate_id
    if instance_id in state.deleted_instances:
        return
    known = state.placements.get(instance_id)
    if known is None or event.attempt >= known.attempt:
        state.placements[instance_id] = Placement(event.attempt, event.host)


@folds.on(MigrationPortSwitchRequested)
def _migrated(state: NetworkState, envelope: Envelope, event: MigrationPortSwitchRequested) -> None:
    """The instance runs on the migration's destination now: its placement is there (a later
    reschedule, with a higher attempt, moves it on as before)."""
    known = state.placements.get(envelope.aggregate_id)
    if known is not None:
        state.placements[envelope.aggregate_id] = Placement(known.attempt, event.host)


@folds.on(InstanceDeleted)
def _instance_deleted(state: NetworkState, envelope: Envelope, event: InstanceDeleted) -> None:
    instance_id = envelope.aggregate_id
    _bounded_add(state.deleted_instances, instance_id)
    state.placements.pop(instance_id, None)


l3_fold.register(folds)

evolve = folds.evolve
