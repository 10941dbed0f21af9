"""The network agent's fold: what each event of the log does to its `NetworkAgentState`.

The fold gives the same state whatever the interleaving of `<ns>.api` and `<ns>.network`;
where a port is plugged in comes only from the agents' own reports (PortBound, PortUnbound).
`evolve` folds one event into the agent's state (pure, deterministic).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from virga_events import Envelope
from virga_events.catalog.api import InstanceDeletionRequested, InstanceRequested
from virga_events.catalog.network import (
    NetworkAgentRegistered,
    NetworkCreated,
    NetworkDeleted,
    PortAllocated,
    PortBindingFailed,
    PortBound,
    PortDeleted,
    PortHostAssigned,
    PortRequested,
    PortSecurityGroupsChanged,
    PortUnbound,
    SecurityGroupCreated,
    SecurityGroupDeleted,
    SecurityGroupRuleAdded,
    SecurityGroupRuleDeleted,
    with_rule_ids,
)
from virga_network.agent.core import l3_fold, migration
from virga_network.agent.core.model import (
    GroupRecord,
    InstanceRecord,
    NetworkAgentState,
    NetworkRecord,
    PortRecord,
)
from virga_runtime.folding import Folds

E = TypeVar("E")
PortFold = Callable[[PortRecord, Envelope, E], None]
"""Folds one event of type E into the record of the port it is about."""

folds: Folds[NetworkAgentState] = Folds()


def _port(state: NetworkAgentState, envelope: Envelope) -> PortRecord:
    port_id = envelope.aggregate_id
    record = state.ports.get(port_id)
    if record is None:
        record = state.ports[port_id] = PortRecord(port_id, envelope.tenant_id)
    return record


def _on_port(event_type: type[E]) -> Callable[[PortFold[E]], PortFold[E]]:
    """Register the decorated function as the fold of a port event: it changes the port's
    record (made if new), which is forgotten once deleted and unbound everywhere."""

    def register(apply: PortFold[E]) -> PortFold[E]:
        def fold(state: NetworkAgentState, envelope: Envelope, event: E) -> None:
            record = _port(state, envelope)
            apply(record, envelope, event)
            if record.deleted and record.bound_host is None:
                del state.ports[record.port_id]  # nothing left of it on any host

        folds.add(event_type, fold)
        return apply

    return register


def _assign(record: PortRecord, host: str, envelope: Envelope) -> None:
    record.host = host
    record.assignment = envelope.event_id


@_on_port(PortRequested)
def _port_requested(record: PortRecord, envelope: Envelope, event: PortRequested) -> None:
    record.network_id = record.network_id or event.network_id
    # The controller's PortHostAssigned may have come first (another topic): it wins.
    if event.host is not None and record.host is None:
        _assign(record, event.host, envelope)


@_on_port(PortAllocated)
def _port_allocated(record: PortRecord, envelope: Envelope, event: PortAllocated) -> None:
    record.network_id, record.mac, record.ips = event.network_id, event.mac, event.ips
    record.instance_id = event.instance_id
    if not record.groups_changed:
        record.security_groups = event.security_groups


@_on_port(PortSecurityGroupsChanged)
def _port_security_groups_changed(
    record: PortRecord, envelope: Envelope, event: PortSecurityGroupsChanged
) -> None:
    record.security_groups, record.groups_changed = event.security_groups, True


@_on_port(PortHostAssigned)
def _port_host_assigned(record: PortRecord, envelope: Envelope, event: PortHostAssigned) -> None:
    _assign(record, event.host, envelope)


@_on_port(PortBound)
def _port_bound(record: PortRecord, envelope: Envelope, event: PortBound) -> None:
    record.bound_host, record.tap = event.host, event.tap
    record.network_id = record.network_id or event.network_id
    record.mac, record.ips = record.mac or event.mac, record.ips or event.ips


@_on_port(PortUnbound)
def _port_unbound(record: PortRecord, envelope: Envelope, event: PortUnbound) -> None:
    if record.bound_host == event.host:
        record.bound_host = record.tap = None


@_on_port(PortBindingFailed)
def _port_binding_failed(record: PortRecord, envelope: Envelope, event: PortBindingFailed) -> None:
    if event.host == record.host:
        record.failed_assignment = record.assignment


@_on_port(PortDeleted)
def _port_deleted(record: PortRecord, envelope: Envelope, event: PortDeleted) -> None:
    record.deleted = True


@folds.on(NetworkCreated)
def _network_created(state: NetworkAgentState, envelope: Envelope, event: NetworkCreated) -> None:
    key = envelope.aggregate_id
    state.networks[key] = NetworkRecord(
        key, envelope.tenant_id, event.vni, event.cidr, event.gateway_ip, dhcp=event.dhcp
    )


@folds.on(NetworkDeleted)
def _network_deleted(state: NetworkAgentState, envelope: Envelope, event: NetworkDeleted) -> None:
    state.networks.pop(envelope.aggregate_id, None)


@folds.on(SecurityGroupCreated)
def _security_group_created(
    state: NetworkAgentState, envelope: Envelope, event: SecurityGroupCreated
) -> None:
    group_id = envelope.aggregate_id
    state.groups[group_id] = GroupRecord(envelope.tenant_id, with_rule_ids(group_id, event.rules))


@folds.on(SecurityGroupRuleAdded)
def _security_group_rule_added(
    state: NetworkAgentState, envelope: Envelope, event: SecurityGroupRuleAdded
) -> None:
    group = state.groups.get(envelope.aggregate_id)
    if group is not None and all(rule.id != event.rule.id for rule in group.rules):
        group.rules = (*group.rules, event.rule)


@folds.on(SecurityGroupRuleDeleted)
def _security_group_rule_deleted(
    state: NetworkAgentState, envelope: Envelope, event: SecurityGroupRuleDeleted
) -> None:
    group = state.groups.get(envelope.aggregate_id)
    if group is not None:
        group.rules = tuple(rule for rule in group.rules if rule.id != event.rule_id)


@folds.on(SecurityGroupDeleted)
def _security_group_deleted(
    state: NetworkAgentState, envelope: Envelope, event: SecurityGroupDeleted
) -> None:
    state.groups.pop(envelope.aggregate_id, None)


@folds.on(NetworkAgentRegistered)
def _agent_registered(
    state: NetworkAgentState, envelope: Envelope, event: NetworkAgentRegistered
) -> None:
    state.vteps[envelope.aggregate_id] = event.vtep_ip


@folds.on(InstanceRequested)
def _instance_requested(
    state: NetworkAgentState, envelope: Envelope, event: InstanceRequested
) -> None:
    key = envelope.aggregate_id
    state.instances[key] = InstanceRecord(
        instance_id=key,
        tenant_id=envelope.tenant_id,
        name=event.name,
        hostname=event.hostname,
        key_name=event.key_name,
        public_keys=event.public_keys,
        user_data=event.user_data,
        availability_zone=event.availability_zone,
        network=event.network,
    )


@folds.on(InstanceDeletionRequested)
def _instance_deletion_requested(
    state: NetworkAgentState, envelope: Envelope, event: InstanceDeletionRequested
) -> None:
    state.instances.pop(envelope.aggregate_id, None)  # its guest reads nothing more


l3_fold.register(folds)
migration.register(folds)
evolve = folds.evolve
