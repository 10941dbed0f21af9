"""The agent's L3 core: which routers and floating IPs this host plumbs (fold and plan), the
NAT table's scripts, and convergence of routers over the in-memory driver."""

from __future__ import annotations

import random
from collections.abc import Sequence

import orjson

from virga_events import Envelope, Event, new_event
from virga_events.catalog.l3 import (
    ExternalNetworkCreated,
    FloatingIpAllocated,
    FloatingIpAssociationAccepted,
    FloatingIpDissociated,
    FloatingIpReleased,
    RouterCreated,
    RouterDeleted,
    RouterInterfaceAdded,
    RouterInterfaceRemoved,
)
from virga_events.catalog.network import (
    NetworkCreated,
    PortAllocated,
    PortDeleted,
    PortHostAssigned,
    default_security_group_id,
)
from virga_network.agent.core import names, nft_nat
from virga_network.agent.core.fold import evolve
from virga_network.agent.core.l3 import router_mac
from virga_network.agent.core.model import NetworkAgentState
from virga_network.agent.core.nft_text import link_local
from virga_network.agent.core.plan import HostPlan, host_plan, zone
from virga_network.agent.core.plumbing import FloatingNat, RouterPlumbing
from virga_network.agent.core.snapshot import STATE_VERSION, restore, snapshot
from virga_network.agent.drivers.memory import MemoryNetworkDriver
from virga_network.agent.effects.converge import AgentEffects
from virga_network.agent.effects.intents import Converge

HOST, VTEP, TENANT = "h1", "192.0.2.1", "t-1"
DEFAULT = default_security_group_id(TENANT)


def ev(payload: Event, key: str, tenant: str | None = TENANT) -> Envelope:
    return new_event(payload, aggregate_id=key, tenant_id=tenant, producer="network")


def port(key: str, ip: str, host: str = HOST, net: str = "n-1") -> list[Envelope]:
    mac = f"02:00:00:00:00:{int(ip.rsplit('.', 1)[1]):02x}"
    allocated = PortAllocated(network_id=net, mac=mac, ips=(ip,), security_groups=(DEFAULT,))
    return [ev(allocated, key), ev(PortHostAssigned(host=host), key)]


def base(router_ip: str = "203.0.113.10") -> list[Envelope]:
    external = ExternalNetworkCreated(
        name="public", cidr="203.0.113.0/24", gateway_ip="203.0.113.1",
        allocation_pools=(), host_interface="br-ex",
    )  # fmt: skip
    network = NetworkCreated(
        name="n", cidr="10.0.0.0/24", vni=1001, gateway_ip="10.0.0.1", allocation_pools=()
    )
    return [
        ev(external, "ext", None),
        ev(network, "n-1"),
        ev(RouterCreated(name="r", external_network_id="ext", external_ip=router_ip), "r-1"),
        ev(RouterInterfaceAdded(network_id="n-1", gateway_ip="10.0.0.1"), "r-1"),
        ev(FloatingIpAllocated(external_network_id="ext", ip="203.0.113.100"), "f-1"),
    ]


def associate(port_id: str, ip: str) -> Envelope:
    return ev(FloatingIpAssociationAccepted(port_id=port_id, network_id="n-1", fixed_ip=ip), "f-1")


def fold(events: Sequence[Envelope], host: str = HOST) -> NetworkAgentState:
    state = NetworkAgentState(host=host)
    for envelope in events:
        state = evolve(state, envelope)
    return state


def plan(events: Sequence[Envelope], host: str = HOST) -> HostPlan:
    return host_plan(fold(events, host), VTEP, names.DEFAULT_PREFIX)


def test_a_router_is_plumbed_where_its_networks_have_ports_with_the_gateway_address() -> None:
    events = [*base(), *port("p-1", "10.0.0.5")]
    (router,) = plan(events).routers
    assert router.namespace == names.router_namespace("r-1", HOST)
    assert router.host_interface == "br-ex"
    assert router.external_cidr == "203.0.113.0/24"
    assert router.external_gateway == "203.0.113.1"
    (leg,) = router.interfaces
    assert (leg.address, leg.cidr, leg.zone) == ("10.0.0.1/24", "10.0.0.0/24", zone(1001))
    assert leg.mac == router_mac("r-1", "n-1")  # the same on every host
    assert leg.bridge == names.bridge_name("n-1")
    # Its leg is tracked in its network's conntrack zone, like the network's other uplinks.
    assert (leg.veth, zone(1001)) in plan(events).filters().uplinks
    # A host without a port of the network has no router, nor does one without a router.
    assert plan(events, host="h2").routers == ()
    assert plan(port("p-1", "10.0.0.5") + base()[:2]).routers == ()


def test_a_floating_ip_is_nat_here_only_when_its_port_is_here() -> None:
    events = [*base(), *port("p-1", "10.0.0.5"), *port("p-2", "10.0.0.6", host="h2")]
    (router,) = plan(events).routers
    assert router.floating == ()
    assert router.external_addresses() == ("203.0.113.10/24",)
    here = [*events, associate("p-1", "10.0.0.5")]
    (router,) = plan(here).routers
    assert router.floating == (FloatingNat("203.0.113.100", "10.0.0.5"),)
    assert router.external_addresses() == ("203.0.113.10/24", "203.0.113.100/32")
    (remote,) = plan(here, host="h2").routers
    assert remote.floating == ()
    # Re-associated to the port on h2: it leaves h1 and appears on h2.
    moved = [*here, associate("p-2", "10.0.0.6")]
    assert plan(moved).routers[0].floating == ()
    assert plan(moved, host="h2").routers[0].floating == (FloatingNat("203.0.113.100", "10.0.0.6"),)
    # A late dissociation of the former port changes nothing; the current one's does.
    late = ev(FloatingIpDissociated(port_id="p-1"), "f-1")
    assert plan([*moved, late], host="h2").routers[0].floating != ()
    gone = ev(FloatingIpDissociated(port_id="p-2"), "f-1")
    assert plan([*moved, gone], host="h2").routers[0].floating == ()
    released = ev(FloatingIpReleased(external_network_id="ext", ip="203.0.113.100"), "f-1")
    assert plan([*here, released]).routers[0].floating == ()


def test_a_fixed_address_the_port_does_not_hold_is_never_mapped() -> None:
    events = [*base(), *port("p-1", "10.0.0.5"), associate("p-1", "10.0.0.99")]
    assert plan(events).routers[0].floating == ()


def test_the_router_address_is_on_one_host_only_the_first_by_name_with_a_port() -> None:
    events = [*base(), *port("p-1", "10.0.0.5", host="h2"), *port("p-2", "10.0.0.6", host="h3")]
    assert plan(events, host="h2").routers[0].snat_ip == "203.0.113.10"
    assert plan(events, host="h3").routers[0].snat_ip is None
    assert plan(events, host="h3").routers[0].external_addresses() == ()
    # Its port deleted, h3 takes the address over.
    deleted = [*events, ev(PortDeleted(), "p-1")]
    assert plan(deleted, host="h3").routers[0].snat_ip == "203.0.113.10"


def test_interfaces_and_routers_that_go_take_their_plumbing_with_them() -> None:
    events = [*base(), *port("p-1", "10.0.0.5"), associate("p-1", "10.0.0.5")]
    removed = ev(RouterInterfaceRemoved(network_id="n-1"), "r-1")
    assert plan([*events, removed]).routers == ()
    assert plan([*events, removed, ev(RouterDeleted(), "r-1")]).routers == ()
    assert fold([*events, removed, ev(RouterDeleted(), "r-1")]).routers == {}


def test_the_plan_is_the_same_whatever_order_the_l3_events_come_in() -> None:
    events = [*base(), *port("p-1", "10.0.0.5"), associate("p-1", "10.0.0.5")]
    expected = plan(events)
    rng = random.Random(17)
    for _ in range(20):
        l3 = [e for e in events if e.aggregate_id in ("r-1", "f-1")]
        rest = [e for e in events if e.aggregate_id not in ("r-1", "f-1")]
        # Each aggregate's events keep their order (one partition); aggregates interleave.
        mixed: list[Envelope] = []
        queues = [[e for e in l3 if e.aggregate_id == k] for k in ("r-1", "f-1")] + [rest]
        while any(queues):
            queue = rng.choice([q for q in queues if q])
            mixed.append(queue.pop(0))
        assert plan(mixed) == expected


def _router(*floating: FloatingNat, snat: str | None = "203.0.113.10") -> RouterPlumbing:
    events = [*base(), *port("p-1", "10.0.0.5")]
    (router,) = plan(events).routers
    return RouterPlumbing(
        router_id=router.router_id,
        namespace=router.namespace,
        host_interface=router.host_interface,
        veth=router.veth,
        external_cidr=router.external_cidr,
        external_gateway=router.external_gateway,
        snat_ip=snat,
        interfaces=router.interfaces,
        floating=floating,
    )


def test_the_nat_table_is_made_whole_once_and_then_changed_element_by_element() -> None:
    one = FloatingNat("203.0.113.100", "10.0.0.5")
    whole = nft_nat.render(_router(one))
    assert "delete table ip virga_nat" in whole
    assert "add element ip virga_nat to_fixed { 203.0.113.100 : 10.0.0.5 }" in whole
    assert "add element ip virga_nat to_floating { 10.0.0.5 : 203.0.113.100 }" in whole
    assert "ip saddr @networks snat to 203.0.113.10" in whole
    assert "snat to" not in nft_nat.render(_router(snat=None)).replace("snat to ip saddr map", "")
    # Associating, re-pointing and dissociating touch elements only, never the table.
    added = nft_nat.render_changes(_router(), _router(one))
    assert added.splitlines() == [
        "add element ip virga_nat to_fixed { 203.0.113.100 : 10.0.0.5 }",
        "add element ip virga_nat to_floating { 10.0.0.5 : 203.0.113.100 }",
        "add element ip virga_nat floated { 10.0.0.5 }",
    ]
    moved = nft_nat.render_changes(_router(one), _router(FloatingNat("203.0.113.100", "10.0.0.6")))
    assert moved.splitlines() == [
        "delete element ip virga_nat to_fixed { 203.0.113.100 }",
        "delete element ip virga_nat to_floating { 10.0.0.5 }",
        "delete element ip virga_nat floated { 10.0.0.5 }",
        "add element ip virga_nat to_fixed { 203.0.113.100 : 10.0.0.6 }",
        "add element ip virga_nat to_floating { 10.0.0.6 : 203.0.113.100 }",
        "add element ip virga_nat floated { 10.0.0.6 }",
    ]
    assert nft_nat.render_changes(_router(one), _router(one)) == ""
    # Not the SNAT host: what has no floating IP here does not leave with its fixed address.
    assert "ip saddr != @floated drop" in nft_nat.render(_router(one, snat=None))
    assert "@floated drop" not in whole
    # The SNAT address is in a rule: its change remakes the (one router's) table.
    assert "delete table" in nft_nat.render_changes(_router(one), _router(one, snat=None))


def test_every_nat_script_line_touches_only_virga_names() -> None:
    one = FloatingNat("203.0.113.100", "10.0.0.5")
    for line in nft_nat.render(_router(one)).splitlines():
        if line.startswith(("table", "delete", "add")):
            assert " virga_nat" in line


async def test_routers_are_made_after_their_networks_and_removed_when_unwanted() -> None:
    driver = MemoryNetworkDriver()
    effects = AgentEffects(driver)
    events = [*base(), *port("p-1", "10.0.0.5"), associate("p-1", "10.0.0.5")]
    wanted = plan(events)
    await effects.converge(Converge(wanted))
    (router,) = wanted.routers
    assert driver.routers == {router.namespace: router}
    calls = driver.calls
    await effects.converge(Converge(wanted))
    assert driver.calls == calls  # nothing twice
    # After a restart (nothing remembered), a router the log no longer wants is removed.
    restarted = AgentEffects(driver)
    await restarted.converge(
        Converge(plan([*events, ev(RouterInterfaceRemoved(network_id="n-1"), "r-1")]))
    )
    assert driver.routers == {}


def test_a_snapshot_keeps_routers_and_floating_ips_and_older_ones_are_not_used() -> None:
    events = [*base(), *port("p-1", "10.0.0.5"), associate("p-1", "10.0.0.5")]
    state = fold(events)
    restored = restore(orjson.loads(orjson.dumps(snapshot(state))))
    assert restored == state
    assert host_plan(restored, VTEP, names.DEFAULT_PREFIX) == plan(events)
    # A snapshot of an agent that did not fold public addresses (version 1), not the
    # acceptances and their confirmations (version 2), not routers' SNAT ports (version 3), or
    # not migrations' network steps (version 4), is of another version.
    assert STATE_VERSION == 5


def test_an_ipv6_network_gets_a_leg_and_its_edge_advertises_the_router_only_while_attached() -> (
    None
):
    six = NetworkCreated(
        name="v6", cidr="fd00:6::/64", vni=1006, gateway_ip="fd00:6::1", allocation_pools=()
    )
    mac = "02:00:00:00:06:05"
    allocated = PortAllocated(
        network_id="n-6", mac=mac, ips=("fd00:6::5",), security_groups=(DEFAULT,)
    )
    attached = [
        *base(),
        ev(six, "n-6"),
        ev(allocated, "p-6"),
        ev(PortHostAssigned(host=HOST), "p-6"),
        ev(RouterInterfaceAdded(network_id="n-6", gateway_ip="fd00:6::1"), "r-1"),
    ]
    state = fold(attached)
    (router,) = host_plan(state, VTEP, names.DEFAULT_PREFIX, edges=True).routers
    # A leg on each of the router's networks (DVR), the IPv4 one without a port here too.
    assert [leg.network_id for leg in router.interfaces] == ["n-1", "n-6"]
    leg = router.interfaces[1]
    assert (leg.address, leg.cidr) == ("fd00:6::1/64", "fd00:6::/64")
    assert leg.link_local == link_local(router_mac("r-1", "n-6"))
    networks = host_plan(state, VTEP, names.DEFAULT_PREFIX, edges=True).networks
    (edge,) = (n.edge for n in networks if n.network_id == "n-6")
    assert edge is not None
    assert edge.router == leg.link_local
    # No floating IPv6: the IPv4 floating IP never maps a fixed IPv6 address.
    assert router.floating == ()
    detached = [*attached, ev(RouterInterfaceRemoved(network_id="n-6"), "r-1")]
    plan6 = host_plan(fold(detached), VTEP, names.DEFAULT_PREFIX, edges=True)
    assert plan6.routers == ()
    (edge,) = (n.edge for n in plan6.networks if n.network_id == "n-6")
    assert edge is not None
    assert edge.router is None
    # A gateway of the other family is no leg.
    mixed = [
        *attached[:-1],
        ev(RouterInterfaceAdded(network_id="n-6", gateway_ip="10.0.6.1"), "r-1"),
    ]
    assert host_plan(fold(mixed), VTEP, names.DEFAULT_PREFIX).routers == ()
