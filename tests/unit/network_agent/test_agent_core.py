"""The network agent's pure core: fold, plan and decisions, without Kafka or netlink."""

from __future__ import annotations

import random
from collections.abc import Sequence

import orjson

from virga_events import Envelope, Event, new_event
from virga_events.catalog.network import (
    NetworkAgentRegistered,
    NetworkCreated,
    PortAllocated,
    PortBindingFailed,
    PortBound,
    PortDeleted,
    PortHostAssigned,
    PortRequested,
    PortUnbound,
    SecurityGroupCreated,
    SecurityGroupRule,
    default_security_group_id,
)
from virga_network.agent.config import NetworkAgentConfig
from virga_network.agent.core import names
from virga_network.agent.core.decide import decide, on_ready, tick
from virga_network.agent.core.fold import evolve
from virga_network.agent.core.model import NetworkAgentState
from virga_network.agent.core.plan import HostPlan, host_plan, zone
from virga_network.agent.core.plumbing import FilterRule
from virga_network.agent.core.snapshot import restore, snapshot
from virga_network.agent.effects.intents import Converge, Register

HOST = "h1"
CONFIG = NetworkAgentConfig(host=HOST, vtep_ip="192.0.2.1")
TENANT = "t-1"
DEFAULT = default_security_group_id(TENANT)


def ev(
    payload: Event, key: str, tenant: str | None = TENANT, producer: str = "network"
) -> Envelope:
    return new_event(payload, aggregate_id=key, tenant_id=tenant, producer=producer)


def network(key: str = "n-1", vni: int = 1001) -> Envelope:
    created = NetworkCreated(
        name=key, cidr="10.0.0.0/24", vni=vni, gateway_ip="10.0.0.1", allocation_pools=()
    )
    return ev(created, key)


def allocated(
    port: str, ip: str, groups: tuple[str, ...] = (DEFAULT,), net: str = "n-1"
) -> Envelope:
    mac = f"02:00:00:00:00:{int(ip.rsplit('.', 1)[1]):02x}"
    return ev(PortAllocated(network_id=net, mac=mac, ips=(ip,), security_groups=groups), port)


def fold(events: Sequence[Envelope], state: NetworkAgentState | None = None) -> NetworkAgentState:
    state = state or NetworkAgentState(HOST)
    for envelope in events:
        state = evolve(state, envelope)
    return state


def plan(state: NetworkAgentState) -> HostPlan:
    return host_plan(state, CONFIG.vtep_ip, CONFIG.prefix, edges=CONFIG.edge)


def test_a_port_assigned_here_is_planned_with_its_network_and_filters() -> None:
    state = fold([network(), allocated("p-1", "10.0.0.5"), ev(PortHostAssigned(host=HOST), "p-1")])
    result = plan(state)
    (port,) = result.ports
    assert port.filter.tap == names.tap_name("p-1")
    assert port.filter.ips == ("10.0.0.5",)
    assert port.filter.zone == zone(1001)
    assert port.report
    (net,) = result.networks
    assert (net.vni, net.bridge) == (1001, names.bridge_name("n-1"))
    # The default group: all egress, ingress only from its members (here, the port itself).
    assert FilterRule(direction="ingress", remote=("10.0.0.5",)) in port.filter.rules
    assert FilterRule(direction="egress") in port.filter.rules


def test_ports_elsewhere_unallocated_or_of_unknown_networks_are_not_planned() -> None:
    state = fold(
        [
            allocated("p-other", "10.0.0.6", net="n-2"),  # network not created (yet)
            ev(PortHostAssigned(host=HOST), "p-other"),
            network(),
            allocated("p-there", "10.0.0.7"),
            ev(PortHostAssigned(host="h2"), "p-there"),
            ev(PortRequested(network_id="n-1", host=HOST), "p-unallocated", producer="gateway"),
        ]
    )
    assert plan(state).ports == ()


def test_a_port_waits_for_a_group_it_names_until_the_group_is_read() -> None:
    events = [
        network(),
        allocated("p-1", "10.0.0.5", ("g-web",)),
        ev(PortHostAssigned(host=HOST), "p-1"),
    ]
    assert plan(fold(events)).ports == ()
    rules = (SecurityGroupRule(direction="ingress", protocol="tcp", port_min=22, port_max=22),)
    state = fold([ev(SecurityGroupCreated(name="web", rules=rules), "g-web", producer="gateway")],
                 fold(events))  # fmt: skip
    (port,) = plan(state).ports
    assert port.filter.rules == (
        FilterRule(direction="ingress", protocol="tcp", port_min=22, port_max=22),
    )


def test_a_remote_group_is_the_addresses_of_its_ports_anywhere() -> None:
    state = fold(
        [
            network(),
            allocated("p-1", "10.0.0.5"),
            ev(PortHostAssigned(host=HOST), "p-1"),
            allocated("p-2", "10.0.0.6"),  # another host's port in the same group
            ev(PortHostAssigned(host="h2"), "p-2"),
            allocated("p-3", "10.0.0.7", ("other",)),
        ]
    )
    (port,) = plan(state).ports
    ingress = [r for r in port.filter.rules if r.direction == "ingress" and r.ethertype == "IPv4"]
    assert ingress == [FilterRule(direction="ingress", remote=("10.0.0.5", "10.0.0.6"))]


def test_other_hosts_ports_give_flood_and_forwarding_entries_once_their_vtep_is_known() -> None:
    base = [
        network(),
        allocated("p-1", "10.0.0.5"),
        ev(PortHostAssigned(host=HOST), "p-1"),
        allocated("p-2", "10.0.0.6"),
        ev(PortBound(host="h2", network_id="n-1", tap="t", mac="02:00:00:00:00:06",
                     ips=("10.0.0.6",)), "p-2"),
    ]  # fmt: skip
    (net,) = plan(fold(base)).networks
    assert (net.flood, net.fdb) == ((), ())  # h2 has not registered: no endpoint to send to
    state = fold([ev(NetworkAgentRegistered(vtep_ip="192.0.2.2"), "h2", None)], fold(base))
    (net,) = plan(state).networks
    assert net.flood == ("192.0.2.2",)
    assert net.fdb == (("02:00:00:00:00:06", "192.0.2.2"),)
    state = fold([ev(PortUnbound(host="h2"), "p-2")], state)
    assert plan(state).networks[0].flood == ()


def test_a_bound_port_is_not_reported_again_and_a_deleted_one_is_unbound() -> None:
    tap = names.tap_name("p-1")
    state = fold([network(), allocated("p-1", "10.0.0.5"), ev(PortHostAssigned(host=HOST), "p-1")])
    state = fold([ev(PortBound(host=HOST, network_id="n-1", tap=tap, mac="02:00:00:00:00:05",
                               ips=("10.0.0.5",)), "p-1")], state)  # fmt: skip
    assert not plan(state).ports[0].report
    state = fold([ev(PortDeleted(), "p-1")], state)
    result = plan(state)
    assert result.ports == ()
    assert [u.port_id for u in result.unbind] == ["p-1"]
    state = fold([ev(PortUnbound(host=HOST), "p-1")], state)
    assert "p-1" not in state.ports
    assert plan(state).unbind == ()


def test_a_failed_binding_is_not_retried_until_the_port_is_assigned_again() -> None:
    state = fold([network(), allocated("p-1", "10.0.0.5"), ev(PortHostAssigned(host=HOST), "p-1")])
    state = fold([ev(PortBindingFailed(host=HOST, reason="boom"), "p-1")], state)
    assert plan(state).ports == ()
    state = fold([ev(PortHostAssigned(host=HOST), "p-1")], state)
    assert len(plan(state).ports) == 1


def test_a_port_requested_with_a_host_is_planned_there() -> None:
    requested = ev(PortRequested(network_id="n-1", host=HOST), "p-1", producer="gateway")
    state = fold([network(), requested, allocated("p-1", "10.0.0.5")])
    assert [p.port_id for p in plan(state).ports] == ["p-1"]
    assert decide(CONFIG, state, requested) == [Converge(plan(state))]


def test_the_plan_does_not_depend_on_the_order_topics_interleave() -> None:
    api = [ev(PortRequested(network_id="n-1", host="h2"), "p-1", producer="gateway")]
    network_topic = [
        network(),
        allocated("p-1", "10.0.0.5"),
        ev(PortHostAssigned(host=HOST), "p-1"),
    ]
    expected = plan(fold(network_topic + api))
    for seed in range(20):
        merged, a, n = [], list(api), list(network_topic)
        rng = random.Random(seed)
        while a or n:
            source = a if a and (not n or rng.random() < 0.5) else n
            merged.append(source.pop(0))
        assert plan(fold(merged)) == expected


def test_snapshot_round_trips_through_json() -> None:
    rules = (SecurityGroupRule(direction="ingress", remote_cidr="10.0.0.0/8"),)
    state = fold(
        [
            network(),
            allocated("p-1", "10.0.0.5", ("g",)),
            ev(PortHostAssigned(host=HOST), "p-1"),
            ev(SecurityGroupCreated(name="g", rules=rules), "g", producer="gateway"),
            ev(NetworkAgentRegistered(vtep_ip="192.0.2.2"), "h2", None),
        ]
    )
    assert restore(orjson.loads(orjson.dumps(snapshot(state)))) == state


def test_a_networks_dhcp_is_folded_and_kept_by_its_snapshot() -> None:
    without = NetworkCreated(name="s", cidr="10.1.0.0/24", vni=1002, gateway_ip="10.1.0.1",
                             allocation_pools=(), dhcp=False)  # fmt: skip
    state = fold([network(), ev(without, "n-2")])
    assert (state.networks["n-1"].dhcp, state.networks["n-2"].dhcp) == (True, False)
    data = orjson.loads(orjson.dumps(snapshot(state)))
    assert restore(data) == state
    # A snapshot written before networks had the flag: their DHCP stays on.
    for record in data["networks"]:
        del record["dhcp"]
    assert all(r.dhcp for r in restore(data).networks.values())


def test_ready_checks_the_host_registers_once_and_converges_fully() -> None:
    state = NetworkAgentState(HOST)
    register, converge = on_ready(CONFIG, state)
    assert register == Register(HOST, "192.0.2.1", announce=True)
    assert isinstance(converge, Converge)
    state = fold([ev(NetworkAgentRegistered(vtep_ip="192.0.2.1"), HOST, None)])
    assert on_ready(CONFIG, state)[0] == Register(HOST, "192.0.2.1", announce=False)
    assert isinstance(tick(CONFIG, state, None), Sequence)  # type: ignore[arg-type]
