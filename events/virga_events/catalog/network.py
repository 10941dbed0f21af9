"""Network facts: requests the gateway writes to `virga.api`, and what the network controller
writes to `virga.network` and each network agent to its host's `virga.network.<host>`.

Aggregates: the network id for networks, the port id for ports, the security group id for
security groups, the host name for agents. An instance created with a network gets one port
whose id is derived from the instance id (`instance_port_id`), so every service names it
alike without waiting for another's event.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Literal

from virga_events.registry import Event, event

_INSTANCE_PORT_NAMESPACE = uuid.UUID("6f1c9a52-1b8e-4f0e-9b7c-3d2f6a1e8c40")
_DEFAULT_GROUP_NAMESPACE = uuid.UUID("0d3b8f0e-5a7c-4c2e-8f61-2b9e4a6d1c73")
_RULE_NAMESPACE = uuid.UUID("9a4e2c71-3f5d-4b8a-a1c6-7e0d52b9f318")

DEFAULT_SECURITY_GROUP_NAME = "default"


def instance_port_id(instance_id: str) -> str:
    """The id of the port made for an instance created with ``"network"``."""
    return str(uuid.uuid5(_INSTANCE_PORT_NAMESPACE, instance_id))


def default_security_group_id(tenant_id: str) -> str:
    """The id of a tenant's default security group.

    The default group of every tenant exists without any event: its id derives from the
    tenant id and its rules are `default_security_group_rules`. A port that names no group
    gets it, and `PortAllocated.security_groups` then holds this id (never an empty tuple).
    """
    return str(uuid.uuid5(_DEFAULT_GROUP_NAMESPACE, tenant_id))


Direction = Literal["ingress", "egress"]
IpProtocol = Literal["any", "tcp", "udp", "icmp", "icmpv6"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationPool:
    """An inclusive range of addresses the controller hands out from."""

    start: str
    end: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityGroupRule:
    """One allow rule: traffic matching it passes; everything else is dropped."""

    direction: Direction
    """ingress: towards the port; egress: from the port."""
    ethertype: Literal["IPv4", "IPv6"] = "IPv4"
    protocol: IpProtocol = "any"
    port_min: int | None = None
    """First destination port (tcp/udp); None with port_max None: every port."""
    port_max: int | None = None
    remote_cidr: str | None = None
    """Peer addresses; None with remote_group None: any peer."""
    remote_group: str | None = None
    """Peers are the ports of this security group (exclusive with remote_cidr)."""
    id: str = ""
    """The rule's id within its group; "" in events written before rules had ids, whose
    id is then `security_group_rule_id` of their position (`with_rule_ids`)."""

    def same_as(self, other: SecurityGroupRule) -> bool:
        """Whether both allow the same traffic (ids aside): a group never holds both."""
        return dataclasses.replace(self, id="") == dataclasses.replace(other, id="")


def security_group_rule_id(group_id: str, index: int) -> str:
    """The id of the rule at `index` of a group's creation (and of a default group's rules)."""
    return str(uuid.uuid5(_RULE_NAMESPACE, f"{group_id}/{index}"))


def with_rule_ids(
    group_id: str, rules: tuple[SecurityGroupRule, ...]
) -> tuple[SecurityGroupRule, ...]:
    """A group's creation rules, each with its id (derived from its position if it has none)."""
    return tuple(
        rule if rule.id else dataclasses.replace(rule, id=security_group_rule_id(group_id, i))
        for i, rule in enumerate(rules)
    )


def default_security_group_rules(group_id: str) -> tuple[SecurityGroupRule, ...]:
    """The default group's rules: all egress; ingress only from ports of the group itself."""
    return with_rule_ids(
        group_id,
        (
            SecurityGroupRule(direction="egress", ethertype="IPv4"),
            SecurityGroupRule(direction="egress", ethertype="IPv6"),
            SecurityGroupRule(direction="ingress", ethertype="IPv4", remote_group=group_id),
            SecurityGroupRule(direction="ingress", ethertype="IPv6", remote_group=group_id),
        ),
    )


# -- requests, on <ns>.api ---------------------------------------------------------------------


@event("NetworkRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkRequested(Event):
    """A tenant asked for a network with one subnet (IPv4 or IPv6), validated by the gateway."""

    name: str
    cidr: str
    allocation_pools: tuple[AllocationPool, ...] = ()
    """Empty: every address of the CIDR but the reserved ones."""
    dhcp: bool = True
    """The edges answer DHCP (DHCPv6) for its ports (OpenStack's subnet `enable_dhcp`);
    False: guests configure themselves statically (a config drive's network_data.json)."""


@event("NetworkDeletionRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkDeletionRequested(Event):
    """A tenant asked to delete a network that has no ports."""


@event("PortRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class PortRequested(Event):
    """A tenant asked for a port on a network (ports of instances come from InstanceRequested)."""

    network_id: str
    name: str = ""
    security_groups: tuple[str, ...] = ()
    """Empty: the tenant's default group."""
    host: str | None = None
    """Bind it on this host right away (admins; ports plugged in by operators and tests)."""


@event("PortDeletionRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class PortDeletionRequested(Event):
    """A tenant asked to delete a port."""


@event("SecurityGroupCreated")
@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityGroupCreated(Event):
    """A tenant's security group with its rules (the gateway owns security groups)."""

    name: str
    rules: tuple[SecurityGroupRule, ...]


@event("SecurityGroupDeleted")
@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityGroupDeleted(Event):
    """A security group no port uses any more was deleted."""


@event("SecurityGroupRuleAdded")
@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityGroupRuleAdded(Event):
    """A rule was added to a tenant's security group (aggregate: the group); the ports that
    carry the group let its traffic in (or out) from then on."""

    rule: SecurityGroupRule
    """With its id (never "")."""


@event("SecurityGroupRuleDeleted")
@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityGroupRuleDeleted(Event):
    """A rule was taken out of a tenant's security group (aggregate: the group)."""

    rule_id: str


@event("PortSecurityGroupsChanged")
@dataclass(frozen=True, slots=True, kw_only=True)
class PortSecurityGroupsChanged(Event):
    """A tenant gave its port other security groups (aggregate: the port), validated by the
    gateway. It replaces the groups of the port's request and allocation, whichever topic
    is folded first: a fold that has seen it keeps its groups over `PortAllocated`'s."""

    security_groups: tuple[str, ...]
    """Never empty; each the port's tenant's (its default group included)."""


# -- controller outcomes, on <ns>.network ------------------------------------------------------


@event("NetworkCreated")
@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkCreated(Event):
    """The network exists with its VXLAN id; its gateway address is reserved."""

    name: str
    cidr: str
    vni: int
    gateway_ip: str
    allocation_pools: tuple[AllocationPool, ...]
    dhcp: bool = True
    """As requested (`NetworkRequested.dhcp`); True in events written before it existed."""


@event("NetworkCreationFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkCreationFailed(Event):
    """The network could not be made (no VXLAN id left, a bad request); `reason` says why."""

    reason: str


@event("NetworkDeletionFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkDeletionFailed(Event):
    """The network was not deleted (it still has ports, or it is unknown); `reason` says why."""

    reason: str
    ports: tuple[str, ...] = ()
    """Ids of the ports still on the network."""


@event("NetworkDeleted")
@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkDeleted(Event):
    """The network is gone; its VXLAN id may be reused."""


@event("PortAllocated")
@dataclass(frozen=True, slots=True, kw_only=True)
class PortAllocated(Event):
    """The controller gave the port its MAC and addresses (never handed out twice)."""

    network_id: str
    mac: str
    ips: tuple[str, ...]
    security_groups: tuple[str, ...]
    """Never empty: the tenant's default group (`default_security_group_id`) if none named."""
    instance_id: str | None = None
    name: str = ""


@event("PortAllocationFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class PortAllocationFailed(Event):
    """No port could be made (pool exhausted, network unknown or deleted); `reason` says which."""

    network_id: str
    reason: str
    instance_id: str | None = None


@event("PortHostAssigned")
@dataclass(frozen=True, slots=True, kw_only=True)
class PortHostAssigned(Event):
    """The port is to be plugged in on `host` (its instance was scheduled there, or a live
    migration's switch moved it there)."""

    host: str


@event("PortDeleted")
@dataclass(frozen=True, slots=True, kw_only=True)
class PortDeleted(Event):
    """The port is gone; its MAC and addresses are free again."""


# -- agent outcomes, on <ns>.network -----------------------------------------------------------


@event("NetworkAgentRegistered")
@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkAgentRegistered(Event):
    """The network agent of a host (aggregate: host name) and its VXLAN tunnel endpoint."""

    vtep_ip: str


@event("PortBound")
@dataclass(frozen=True, slots=True, kw_only=True)
class PortBound(Event):
    """The port's tap, bridge, VXLAN and filters exist on `host`; an instance may use the tap."""

    host: str
    network_id: str
    tap: str
    """The host-side tap device (libvirt opens it, managed='no')."""
    mac: str
    ips: tuple[str, ...]
    instance_id: str | None = None


@event("PortBindingFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class PortBindingFailed(Event):
    """The agent on `host` could not plug the port in; `reason` says why."""

    host: str
    reason: str
    instance_id: str | None = None


@event("PortUnbound")
@dataclass(frozen=True, slots=True, kw_only=True)
class PortUnbound(Event):
    """The port's tap and filters were removed from `host`."""

    host: str


@event("MigrationPortPlumbed")
@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationPortPlumbed(Event):
    """The agent of `host` plumbed the migrating instance's ports, unbound (aggregate:
    instance id): the destination guest finds its taps when it arrives."""

    flow_id: str
    step: str
    host: str


@event("MigrationPortPlumbingFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationPortPlumbingFailed(Event):
    """The agent of `host` could not plumb the migrating instance's ports; `reason` says why."""

    flow_id: str
    step: str
    host: str
    reason: str


@event("MigrationPortActivated")
@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationPortActivated(Event):
    """The migrating instance's guest runs on `host` now (aggregate: instance id): the agent
    of `host`, the flow's destination, saw its first frame on a tap it plumbed for it (QEMU
    announces a migrated guest's MAC as it takes over). Every agent follows at once: the
    destination's taps carry it, the source unplugs, the others forward its MAC there; the
    controller's PortHostAssigned follows at the flow's switch, and only then PortBound.
    `source`: where the log assigned the instance's ports then (the host the guest left)."""

    flow_id: str
    host: str
    source: str


@event("MigrationPortSwitched")
@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationPortSwitched(Event):
    """The migrated instance's ports are bound on `host` (aggregate: instance id): forwarding
    follows it there."""

    flow_id: str
    step: str
    host: str
