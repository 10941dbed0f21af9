"""What one network agent knows, folded from the log: networks, ports, groups, other hosts.

The agent keeps the whole cloud's ports, not only its own: a remote group's addresses and
the VXLAN forwarding entries towards other hosts both come from other hosts' ports (`fold`
says how each event changes it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from virga_events.catalog.network import SecurityGroupRule


@dataclass(slots=True)
class NetworkRecord:
    network_id: str
    tenant_id: str | None
    vni: int
    cidr: str
    gateway_ip: str = ""
    """The router address guests are told (DHCP, network_data.json); "" in old snapshots."""
    dhcp: bool = True
    """The edge answers its ports' DHCP (DHCPv6); True in old snapshots."""


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
    groups_changed: bool = False
    """Its groups come from a PortSecurityGroupsChanged (`<ns>.api`), which wins over an
    allocation folded after it (`<ns>.network`)."""
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
class InstanceRecord:
    """What a guest may read about itself (the metadata service, DHCP), from its request."""

    instance_id: str
    tenant_id: str | None
    name: str
    hostname: str | None = None
    key_name: str | None = None
    public_keys: tuple[str, ...] = ()
    user_data: str | None = None
    """Base64, as the tenant sent it."""
    availability_zone: str | None = None
    network: str | None = None
    """The network its port is on, if it asked for one (a migration waits for that port)."""


@dataclass(slots=True)
class GroupRecord:
    tenant_id: str | None
    rules: tuple[SecurityGroupRule, ...]


@dataclass(slots=True)
class ExternalNetworkRecord:
    """A provider segment every host reaches through `host_interface` (`core.l3`)."""

    cidr: str
    gateway_ip: str
    host_interface: str


@dataclass(slots=True)
class RouterRecord:
    tenant_id: str | None
    external_network_id: str = ""
    external_ip: str = ""
    """Its SNAT source on the external network; "" until RouterCreated is folded."""
    networks: dict[str, str] = field(default_factory=dict)
    """Attached network -> the gateway address the router answers on it."""
    snat_ports: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Attached network -> (MAC, address) of the router's SNAT port on it, if it has one."""


@dataclass(slots=True)
class FloatingIpRecord:
    tenant_id: str | None
    external_network_id: str = ""
    ip: str = ""
    port_id: str | None = None
    """The port it points at (FloatingIpAssociationAccepted), None while dissociated."""
    network_id: str = ""
    fixed_ip: str = ""
    acceptance: str = ""
    """The event id of the acceptance that pointed it at `port_id` (what its host confirms)."""


@dataclass(frozen=True, slots=True)
class ConfirmedFloatingIp:
    """A floating IP this host confirmed plumbed (FloatingIpAssociated) and has not reported
    unplumbed since (FloatingIpUnplumbed)."""

    port_id: str
    tenant_id: str | None
    acceptance: str = ""
    """The FloatingIpAssociationAccepted (event id) it confirmed."""


@dataclass(slots=True)
class MigrationRecord:
    """A live migration's network steps (`core.migration`), by flow: the scheduler's requests
    and the destination's answers, counted, so a re-sent request is answered again."""

    instance_id: str
    tenant_id: str | None
    destination: str = ""
    """The host asked to plumb, then to take the binding ("" until a request is folded)."""
    plumb_requests: int = 0
    plumb_answers: int = 0
    """MigrationPortPlumbed and MigrationPortPlumbingFailed."""
    unplumbed: bool = False
    """MigrationPortUnplumbRequested: the destination's plumbing is to go (unless bound)."""
    switch_requests: int = 0
    switch_answers: int = 0
    source: str = ""
    """The host the guest left, from the switch request or the activation ("" before)."""
    activated: str = ""
    """The host whose MigrationPortActivated says the guest runs there (heeded if it is the
    destination: the topics are folded in no set order)."""
    superseded: bool = False
    """A later migration of the instance asked its own switch: this one says nothing more
    about where the guest runs (`core.migration.moved`)."""


@dataclass(slots=True)
class NetworkAgentState:
    """The fold of one agent: `host` is fixed, the rest comes from events."""

    host: str
    networks: dict[str, NetworkRecord] = field(default_factory=dict)
    ports: dict[str, PortRecord] = field(default_factory=dict)
    groups: dict[str, GroupRecord] = field(default_factory=dict)
    vteps: dict[str, str] = field(default_factory=dict)
    """Host -> its VXLAN tunnel endpoint (NetworkAgentRegistered)."""
    instances: dict[str, InstanceRecord] = field(default_factory=dict)
    """Instances requested and not yet deleted: what the edge serves their guests."""
    externals: dict[str, ExternalNetworkRecord] = field(default_factory=dict)
    routers: dict[str, RouterRecord] = field(default_factory=dict)
    floating_ips: dict[str, FloatingIpRecord] = field(default_factory=dict)
    confirmed: dict[str, ConfirmedFloatingIp] = field(default_factory=dict)
    """Floating IP -> what this host last reported plumbed for it (`core.l3.reports`)."""
    migrations: dict[str, MigrationRecord] = field(default_factory=dict)
    """Flow id -> a running live migration's network steps (`core.migration`)."""
    ended_flows: dict[str, None] = field(default_factory=dict)
    """Flows that ended (bounded): their requests and answers folded late change nothing."""
