"""Public addresses (Neutron's L3 contract): external networks, floating IPs and routers.

Requests are written by the gateway to `<ns>.api`; the network controller, which owns every
address, answers on `<ns>.network`. Aggregates: the external network id, the floating IP id,
the router id. An external network is the admin's (no tenant); floating IPs and routers are
a tenant's, and each holds one address of an external network's pools, never two holders at
once (`virga audit check` proves it from the log).

The controller accepts an association (`FloatingIpAssociationAccepted`: the port's host,
network and fixed address); each host's network agent plumbs it (`virga_network.agent.core.l3`:
1:1 NAT for floating IPs, SNAT for routers) at its next convergence, and the port's host then
records `FloatingIpAssociated`: the association is done only once its rules and ARP answer are
in place. A host that removed them again (dissociation, release, the port moved away) records
`FloatingIpUnplumbed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from virga_events.catalog.network import AllocationPool
from virga_events.registry import Event, event, upcaster

# -- requests, on <ns>.api ---------------------------------------------------------------------


@event("ExternalNetworkRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalNetworkRequested(Event):
    """An admin asked for a provider segment reached through `host_interface` on every host."""

    name: str
    cidr: str
    gateway_ip: str
    """The upstream router's address on the segment (never handed out)."""
    allocation_pools: tuple[AllocationPool, ...] = ()
    """Empty: every address of the CIDR but the reserved ones and the gateway."""
    host_interface: str
    """The Linux interface or bridge (devstack's br-ex) each host reaches the segment by."""


@event("ExternalNetworkDeletionRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalNetworkDeletionRequested(Event):
    """An admin asked to delete an external network no floating IP or router uses."""


@event("FloatingIpRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class FloatingIpRequested(Event):
    """A tenant asked for an address of an external network's pools."""

    external_network_id: str


@event("FloatingIpAssociationRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class FloatingIpAssociationRequested(Event):
    """A tenant asked to point its floating IP at one of its ports, or (None) at none."""

    port_id: str | None


@event("FloatingIpReleaseRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class FloatingIpReleaseRequested(Event):
    """A tenant gave its floating IP back."""


@event("RouterRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class RouterRequested(Event):
    """A tenant asked for a router with an address on an external network (its SNAT source)."""

    name: str
    external_network_id: str


@event("RouterInterfaceRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class RouterInterfaceRequested(Event):
    """A tenant asked to attach one of its networks to its router (one router per network)."""

    network_id: str


@event("RouterInterfaceRemovalRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class RouterInterfaceRemovalRequested(Event):
    """A tenant asked to detach a network from its router."""

    network_id: str


@event("RouterDeletionRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class RouterDeletionRequested(Event):
    """A tenant asked to delete a router that has no interfaces."""


# -- controller outcomes, on <ns>.network ------------------------------------------------------


@event("ExternalNetworkCreated")
@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalNetworkCreated(Event):
    """The external network exists; its pools are as given or defaulted."""

    name: str
    cidr: str
    gateway_ip: str
    allocation_pools: tuple[AllocationPool, ...]
    host_interface: str


@event("ExternalNetworkCreationFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalNetworkCreationFailed(Event):
    reason: str


@event("ExternalNetworkDeleted")
@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalNetworkDeleted(Event):
    """The external network is gone (nothing held an address of it)."""


@event("ExternalNetworkDeletionFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalNetworkDeletionFailed(Event):
    """Not deleted: floating IPs or routers still hold its addresses (their ids)."""

    reason: str
    floating_ips: tuple[str, ...] = ()
    routers: tuple[str, ...] = ()


@event("FloatingIpAllocated")
@dataclass(frozen=True, slots=True, kw_only=True)
class FloatingIpAllocated(Event):
    """The floating IP holds `ip` of the external network from now (billing counts from here)."""

    external_network_id: str
    ip: str


@event("FloatingIpAllocationFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class FloatingIpAllocationFailed(Event):
    external_network_id: str
    reason: str


@event("FloatingIpAssociationAccepted")
@dataclass(frozen=True, slots=True, kw_only=True)
class FloatingIpAssociationAccepted(Event):
    """The controller points the floating IP at `port_id` (moved from its former port, if any);
    not done until the port's host confirms (`FloatingIpAssociated`).

    What the host data path acts on: `host` (None: the port is not placed yet), the port's
    `network_id` and its `fixed_ip`.
    """

    port_id: str
    network_id: str
    fixed_ip: str
    host: str | None = None


@event("FloatingIpAssociated", version=2)
@dataclass(frozen=True, slots=True, kw_only=True)
class FloatingIpAssociated(Event):
    """Done: `host`, the port's host, NATs the floating IP to `fixed_ip` and answers ARP for
    it on the external segment (recorded by its network agent after the plumbing).

    Version 1 was the controller's decision itself, recorded before any plumbing (now
    `FloatingIpAssociationAccepted`); upcast, it says `accepted` and folds as both.
    """

    port_id: str
    host: str
    network_id: str = ""
    fixed_ip: str = ""
    acceptance: str = ""
    """The event id of the `FloatingIpAssociationAccepted` it confirms: a confirmation is of
    one acceptance (a re-association to the same port is confirmed again), whatever order a
    reader folds the controller's topic and the host's in."""
    accepted: bool = False
    """True only for a version 1 event: the acceptance and its confirmation at once."""


@upcaster("FloatingIpAssociated", from_version=1)
def _associated_v1(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 (the controller's decision, taken as done) -> v2 (a host's confirmation)."""
    return {**payload, "host": payload.get("host") or "", "accepted": True}


@event("FloatingIpAssociationFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class FloatingIpAssociationFailed(Event):
    port_id: str | None
    reason: str


@event("FloatingIpDissociated")
@dataclass(frozen=True, slots=True, kw_only=True)
class FloatingIpDissociated(Event):
    """The floating IP points at no port any more (asked, or its port was deleted)."""

    port_id: str


@event("FloatingIpReleased")
@dataclass(frozen=True, slots=True, kw_only=True)
class FloatingIpReleased(Event):
    """The address is free again (billing stops here); `ip` empty if none was ever held."""

    external_network_id: str
    ip: str = ""


@event("FloatingIpUnplumbed")
@dataclass(frozen=True, slots=True, kw_only=True)
class FloatingIpUnplumbed(Event):
    """`host` no longer NATs the floating IP to `port_id`'s address nor answers ARP for it
    (dissociated, released, or the port moved away), having confirmed it before."""

    port_id: str
    host: str
    acceptance: str = ""
    """The acceptance its confirmation named (`FloatingIpAssociated.acceptance`)."""


@event("RouterCreated")
@dataclass(frozen=True, slots=True, kw_only=True)
class RouterCreated(Event):
    """The router holds `external_ip` of the external network (billed as a public IP)."""

    name: str
    external_network_id: str
    external_ip: str


@event("RouterCreationFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class RouterCreationFailed(Event):
    external_network_id: str
    reason: str


@event("RouterInterfaceAdded")
@dataclass(frozen=True, slots=True, kw_only=True)
class RouterInterfaceAdded(Event):
    """The network routes through the router; its gateway address is the router's.

    With it, the router's SNAT port on the network (`snat_port_id`): a MAC and an address of
    the network's pools, held like a port's until the interface is removed. The router's
    SNAT host answers it; the other hosts send their guests' external traffic that has no
    floating IP to it (centralized SNAT). Empty in an interface added before SNAT ports
    existed: its guests without a floating IP reach outside only from the SNAT host.
    """

    network_id: str
    gateway_ip: str
    snat_mac: str = ""
    snat_ip: str = ""


def snat_port_id(router_id: str, network_id: str) -> str:
    """The holder of a router's SNAT port on a network (of its MAC and address)."""
    return f"{router_id}/snat/{network_id}"


@event("RouterInterfaceAdditionFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class RouterInterfaceAdditionFailed(Event):
    network_id: str
    reason: str


@event("RouterInterfaceRemoved")
@dataclass(frozen=True, slots=True, kw_only=True)
class RouterInterfaceRemoved(Event):
    """The network is detached; the router's SNAT port on it is free again."""

    network_id: str


@event("RouterInterfaceRemovalFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class RouterInterfaceRemovalFailed(Event):
    """Not detached: floating IPs point at ports of the network (their ids), or no such
    interface."""

    network_id: str
    reason: str
    floating_ips: tuple[str, ...] = ()


@event("RouterDeleted")
@dataclass(frozen=True, slots=True, kw_only=True)
class RouterDeleted(Event):
    """The router is gone and its external address free (`external_ip` empty if it had none)."""

    external_network_id: str = ""
    external_ip: str = ""


@event("RouterDeletionFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class RouterDeletionFailed(Event):
    """Not deleted: it still has interfaces (their network ids)."""

    reason: str
    networks: tuple[str, ...] = ()
