"""What one network agent knows, folded from the log: networks, ports, groups, other hosts.

The agent keeps the whole cloud's ports, not only its own: a remote group's addresses and
the VXLAN forwarding entries towards other hosts both come from other hosts' ports. The fold
gives the same state whatever the interleaving of `<ns>.api` and `<ns>.network`; where a
port is plugged in comes only from the agents' own reports (PortBound, PortUnbound).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from virga_events import Envelope
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
    PortUnbound,
    SecurityGroupCreated,
    SecurityGroupDeleted,
    SecurityGroupRule,
)


@dataclass(slots=True)
class NetworkRecord:
    network_id: str
    tenant_id: str | None
    vni: int
    cidr: str


@dataclass(slots=True)
class PortRecord:
    """A port anywhere in the cloud, from its request or allocation until it is gone."""

    port_id: str
    tenant_id: str | None
    network_id: str | None = None
    mac: str | None = None
    """None until the controller allocated the port."""
    ips: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    instance_id: str | None = None
    host: str | None = None
    """Where it is to be plugged in (PortHostAssigned, or PortRequested.host)."""
    assignment: str = ""
    """The event that assigned `host`: a failure is remembered per assignment."""
    bound_host: str | None = None
    """Where an agent reports it plugged in (PortBound until PortUnbound)."""
    tap: str | None = None
    failed_assignment: str | None = None
    """The assignment whose binding failed: not tried again until a new assignment."""
    deleted: bool = False


@dataclass(slots=True)
class GroupRecord:
    tenant_id: str | None
    rules: tuple[SecurityGroupRule, ...]


@dataclass(slots=True)
class AgentState:
    """The fold of one agent: `host` is fixed, the rest comes from events."""

    host: str
    networks: dict[str, NetworkRecord] = field(default_factory=dict)
    ports: dict[str, PortRecord] = field(default_factory=dict)
    groups: dict[str, GroupRecord] = field(default_factory=dict)
    vteps: dict[str, str] = field(default_factory=dict)
    """Host -> its VXLAN tunnel endpoint (NetworkAgentRegistered)."""


def _port(state: AgentState, envelope: Envelope) -> PortRecord:
    port_id = envelope.aggregate_id
    record = state.ports.get(port_id)
    if record is None:
        record = state.ports[port_id] = PortRecord(port_id, envelope.tenant_id)
    return record


def _assign(record: PortRecord, host: str, envelope: Envelope) -> None:
    record.host = host
    record.assignment = envelope.event_id


def _port_event(state: AgentState, envelope: Envelope) -> None:
    event = envelope.payload
    record = _port(state, envelope)
    if isinstance(event, PortRequested):
        record.network_id = record.network_id or event.network_id
        # The controller's PortHostAssigned may have come first (another topic): it wins.
        if event.host is not None and record.host is None:
            _assign(record, event.host, envelope)
    elif isinstance(event, PortAllocated):
        record.network_id, record.mac, record.ips = event.network_id, event.mac, event.ips
        record.security_groups, record.instance_id = event.security_groups, event.instance_id
    elif isinstance(event, PortHostAssigned):
        _assign(record, event.host, envelope)
    elif isinstance(event, PortBound):
        record.bound_host, record.tap = event.host, event.tap
        record.network_id = record.network_id or event.network_id
        record.mac, record.ips = record.mac or event.mac, record.ips or event.ips
    elif isinstance(event, PortUnbound) and record.bound_host == event.host:
        record.bound_host = record.tap = None
    elif isinstance(event, PortBindingFailed) and event.host == record.host:
        record.failed_assignment = record.assignment
    elif isinstance(event, PortDeleted):
        record.deleted = True
    if record.deleted and record.bound_host is None:
        del state.ports[record.port_id]  # nothing left of it on any host


_PORT_EVENTS = (
    PortRequested,
    PortAllocated,
    PortHostAssigned,
    PortBound,
    PortUnbound,
    PortBindingFailed,
    PortDeleted,
)


def evolve(state: AgentState, envelope: Envelope) -> AgentState:
    """Fold one event into the agent's state (pure, deterministic)."""
    event = envelope.payload
    key = envelope.aggregate_id
    if isinstance(event, _PORT_EVENTS):
        _port_event(state, envelope)
    elif isinstance(event, NetworkCreated):
        state.networks[key] = NetworkRecord(key, envelope.tenant_id, event.vni, event.cidr)
    elif isinstance(event, NetworkDeleted):
        state.networks.pop(key, None)
    elif isinstance(event, SecurityGroupCreated):
        state.groups[key] = GroupRecord(envelope.tenant_id, event.rules)
    elif isinstance(event, SecurityGroupDeleted):
        state.groups.pop(key, None)
    elif isinstance(event, NetworkAgentRegistered):
        state.vteps[key] = event.vtep_ip
    return state


# -- snapshots: plain JSON types only ---------------------------------------------------------


def snapshot(state: AgentState) -> dict[str, Any]:
    """The state as orjson-able values; `restore` is its inverse."""
    return {
        "host": state.host,
        "networks": [dataclasses.asdict(r) for r in state.networks.values()],
        "ports": [dataclasses.asdict(r) for r in state.ports.values()],
        "groups": {
            group_id: {"tenant_id": g.tenant_id, "rules": [dataclasses.asdict(r) for r in g.rules]}
            for group_id, g in state.groups.items()
        },
        "vteps": dict(state.vteps),
    }


def restore(data: dict[str, Any]) -> AgentState:
    ports = {}
    for raw in data["ports"]:
        fields = dict(raw)
        fields["ips"] = tuple(fields["ips"])
        fields["security_groups"] = tuple(fields["security_groups"])
        ports[fields["port_id"]] = PortRecord(**fields)
    return AgentState(
        host=data["host"],
        networks={r["network_id"]: NetworkRecord(**r) for r in data["networks"]},
        ports=ports,
        groups={
            group_id: GroupRecord(
                raw["tenant_id"], tuple(SecurityGroupRule(**rule) for rule in raw["rules"])
            )
            for group_id, raw in data["groups"].items()
        },
        vteps=dict(data["vteps"]),
    )
