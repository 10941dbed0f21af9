"""The network controller's pure core: VXLAN ids, MACs, addresses, ports and their life."""

from __future__ import annotations

import random
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from virga_events import Envelope, Event, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.compute import InstanceDeleted
from virga_events.catalog.network import (
    AllocationPool,
    NetworkCreated,
    NetworkCreationFailed,
    NetworkDeleted,
    NetworkDeletionFailed,
    NetworkDeletionRequested,
    NetworkRequested,
    PortAllocated,
    PortAllocationFailed,
    PortDeleted,
    PortDeletionRequested,
    PortHostAssigned,
    PortRequested,
    SecurityGroupCreated,
    SecurityGroupRule,
    default_security_group_id,
    instance_port_id,
)
from virga_events.catalog.scheduler import InstanceScheduled
from virga_network.config import NetworkConfig
from virga_network.core.decide import decide
from virga_network.core.fold import evolve
from virga_network.core.macs import candidate_mac
from virga_network.core.model import NetworkState
from virga_network.core.snapshot import restore, snapshot
from virga_runtime.service import Emit

CONFIG = NetworkConfig(vni_min=100, vni_max=103)
TINY = Flavor(name="m1.tiny", vcpus=1, ram_mb=256, disk_gb=1)


class Controller:
    """Folds inputs, decides, and folds the decisions back at once, as the runner does."""

    def __init__(self, state: NetworkState | None = None) -> None:
        self.state = state or NetworkState()
        self.log: list[Envelope] = []
        self.counter = 0

    def input(self, event: Event, aggregate: str, tenant: str = "t-1") -> list[Event]:
        envelope = new_event(event, aggregate_id=aggregate, tenant_id=tenant, producer="gateway")
        self.log.append(envelope)
        self.state = evolve(self.state, envelope)
        out: list[Event] = []
        for intent in decide(CONFIG, self.state, envelope):
            assert isinstance(intent, Emit)
            emitted = new_event(
                intent.payload,
                aggregate_id=intent.aggregate_id,
                tenant_id=intent.tenant_id,
                producer="network",
            )
            self.log.append(emitted)
            self.state = evolve(self.state, emitted)
            out.append(intent.payload)
        return out

    def network(self, cidr: str, tenant: str = "t-1", **kw: object) -> tuple[str, NetworkCreated]:
        self.counter += 1
        network_id = f"net-{self.counter}"
        [created] = self.input(NetworkRequested(name="n", cidr=cidr, **kw), network_id, tenant)  # type: ignore[arg-type]
        assert isinstance(created, NetworkCreated), created
        return network_id, created

    def port(self, network_id: str, tenant: str = "t-1", **kw: object) -> tuple[str, Event]:
        self.counter += 1
        port_id = f"port-{self.counter}"
        [outcome, *_] = self.input(PortRequested(network_id=network_id, **kw), port_id, tenant)  # type: ignore[arg-type]
        return port_id, outcome


def allocated(outcome: Event) -> PortAllocated:
    assert isinstance(outcome, PortAllocated), outcome
    return outcome


def test_networks_get_the_lowest_free_vxlan_id_and_a_deleted_ones_comes_back() -> None:
    c = Controller()
    (a, first), (_, second) = c.network("10.0.0.0/24"), c.network("10.0.0.0/24", tenant="t-2")
    assert (first.vni, second.vni) == (100, 101)
    assert (first.gateway_ip, first.allocation_pools) == (
        "10.0.0.1",
        (AllocationPool(start="10.0.0.2", end="10.0.0.254"),),
    )
    assert c.input(NetworkDeletionRequested(), a) == [NetworkDeleted()]
    assert c.network("10.1.0.0/24")[1].vni == 100
    assert c.network("10.2.0.0/24")[1].vni == 102
    c.network("10.3.0.0/24")
    [failed] = c.input(NetworkRequested(name="n", cidr="10.4.0.0/24"), "net-full")
    assert isinstance(failed, NetworkCreationFailed)
    assert "every VXLAN id from 100 to 103 is in use" in failed.reason


def test_a_network_keeps_the_dhcp_it_was_requested_with() -> None:
    c = Controller()
    assert c.network("10.0.0.0/24")[1].dhcp is True  # the default, as in older requests
    assert c.network("10.1.0.0/24", dhcp=False)[1].dhcp is False


def test_a_bad_request_that_slipped_past_the_gateway_fails_with_its_reason() -> None:
    [failed] = Controller().input(NetworkRequested(name="n", cidr="10.0.0.1/24"), "net-x")
    assert isinstance(failed, NetworkCreationFailed)
    assert "host bits" in failed.reason


def test_ports_get_distinct_addresses_and_macs_and_the_default_group() -> None:
    c = Controller()
    network_id, _ = c.network("10.0.0.0/28")
    ports = [allocated(c.port(network_id)[1]) for _ in range(13)]
    assert [p.ips[0] for p in ports] == [f"10.0.0.{i}" for i in range(2, 15)]
    macs = {p.mac for p in ports}
    assert len(macs) == 13
    assert all(m.startswith("fa:16:3e:") for m in macs)
    assert {p.security_groups for p in ports} == {(default_security_group_id("t-1"),)}
    _port_id, failed = c.port(network_id)
    assert isinstance(failed, PortAllocationFailed)
    assert failed.reason == "no free address left in the allocation pools of 10.0.0.0/28"


def test_a_deleted_port_frees_its_address_and_mac() -> None:
    c = Controller()
    network_id, _ = c.network("10.0.0.0/29")  # .2 to .6
    ports = [c.port(network_id) for _ in range(5)]
    assert isinstance(c.port(network_id)[1], PortAllocationFailed)
    freed_id, freed = ports[2]
    assert c.input(PortDeletionRequested(), freed_id) == [PortDeleted()]
    assert allocated(freed).mac not in c.state.macs
    again = allocated(c.port(network_id)[1])
    assert again.ips == allocated(freed).ips == ("10.0.0.4",)
    assert c.input(PortDeletionRequested(), freed_id) == []  # asked twice: nothing more


def test_ipv6_networks_hand_out_from_the_start_of_a_slash_64() -> None:
    c = Controller()
    network_id, created = c.network("fd00:1:0:0::/64")
    assert (created.cidr, created.gateway_ip) == ("fd00:1::/64", "fd00:1::1")
    assert [allocated(c.port(network_id)[1]).ips for _ in range(2)] == [
        ("fd00:1::2",),
        ("fd00:1::3",),
    ]


def test_allocation_pools_bound_the_addresses() -> None:
    c = Controller()
    pools = (AllocationPool(start="10.0.0.50", end="10.0.0.51"),)
    network_id, _ = c.network("10.0.0.0/24", allocation_pools=pools)
    ips = [allocated(c.port(network_id)[1]).ips[0] for _ in range(2)]
    assert ips == ["10.0.0.50", "10.0.0.51"]
    assert isinstance(c.port(network_id)[1], PortAllocationFailed)


def test_overlapping_cidrs_of_two_tenants_are_separate_networks() -> None:
    c = Controller()
    mine, _ = c.network("10.0.0.0/24", tenant="t-1")
    theirs, _ = c.network("10.0.0.0/24", tenant="t-2")
    assert allocated(c.port(mine)[1]).ips == allocated(c.port(theirs, "t-2")[1]).ips
    _, foreign = c.port(theirs, "t-1")
    assert isinstance(foreign, PortAllocationFailed)
    assert foreign.reason == f"no network {theirs}"


def test_named_security_groups_must_exist_and_belong_to_the_tenant() -> None:
    c = Controller()
    network_id, _ = c.network("10.0.0.0/24")
    rule = SecurityGroupRule(direction="ingress", protocol="tcp", port_min=22, port_max=22)
    c.input(SecurityGroupCreated(name="ssh", rules=(rule,)), "sg-ssh")
    c.input(SecurityGroupCreated(name="web", rules=()), "sg-theirs", tenant="t-2")
    assert allocated(c.port(network_id, security_groups=("sg-ssh",))[1]).security_groups == (
        "sg-ssh",
    )
    _, failed = c.port(network_id, security_groups=("sg-ssh", "sg-theirs"))
    assert isinstance(failed, PortAllocationFailed)
    assert failed.reason == "no security group sg-theirs"
    # An instance's port gets the groups of the instance's request, checked alike.
    requested = InstanceRequested(
        name="web", flavor=TINY, network=network_id, security_groups=("sg-ssh",)
    )
    assert allocated(c.input(requested, "i-9")[0]).security_groups == ("sg-ssh",)
    theirs = InstanceRequested(
        name="web", flavor=TINY, network=network_id, security_groups=("sg-theirs",)
    )
    [refused] = c.input(theirs, "i-10")
    assert isinstance(refused, PortAllocationFailed)
    assert refused.reason == "no security group sg-theirs"


def test_a_macs_collision_takes_the_next_derivation() -> None:
    c = Controller()
    network_id, _ = c.network("10.0.0.0/24")
    taken = candidate_mac("fa:16:3e", "port-2", 0)
    c.state.macs[taken] = ["someone"]
    port = allocated(c.port(network_id)[1])
    assert port.mac == candidate_mac("fa:16:3e", "port-2", 1) != taken


def test_a_network_with_ports_is_not_deleted_and_says_which() -> None:
    c = Controller()
    network_id, _ = c.network("10.0.0.0/24")
    port_id, _ = c.port(network_id)
    [failed] = c.input(NetworkDeletionRequested(), network_id)
    assert isinstance(failed, NetworkDeletionFailed)
    assert failed.ports == (port_id,)
    c.input(PortDeletionRequested(), port_id)
    assert c.input(NetworkDeletionRequested(), network_id) == [NetworkDeleted()]
    _, late = c.port(network_id)
    assert isinstance(late, PortAllocationFailed)
    assert "was deleted" in late.reason


def scheduled(host: str, attempt: int = 1) -> InstanceScheduled:
    return InstanceScheduled(
        host=host, rack="r", zone="z", attempt=attempt, name="web", flavor=TINY, network="net-1"
    )


def test_an_instance_port_follows_its_instance() -> None:
    c = Controller()
    network_id, _ = c.network("10.0.0.0/24")
    port_id = instance_port_id("i-1")
    [port] = c.input(InstanceRequested(name="web", flavor=TINY, network=network_id), "i-1")
    assert allocated(port).instance_id == "i-1"
    assert c.state.ports[port_id].ips == ["10.0.0.2"]
    assert c.input(scheduled("hv-1"), "i-1") == [PortHostAssigned(host="hv-1")]
    assert c.input(scheduled("hv-2", attempt=2), "i-1") == [PortHostAssigned(host="hv-2")]
    assert c.input(scheduled("hv-1", attempt=1), "i-1") == []  # a late, older placement
    assert c.input(InstanceDeleted(host="hv-2"), "i-1") == [PortDeleted()]
    assert port_id not in c.state.ports


def test_a_placement_seen_before_the_request_is_applied_with_the_allocation() -> None:
    c = Controller()
    network_id, _ = c.network("10.0.0.0/24")
    assert c.input(scheduled("hv-3"), "i-2") == []
    out = c.input(InstanceRequested(name="web", flavor=TINY, network=network_id), "i-2")
    assert [type(e) for e in out] == [PortAllocated, PortHostAssigned]
    assert out[1] == PortHostAssigned(host="hv-3")


def test_an_instances_refused_port_goes_with_the_instance() -> None:
    c = Controller()
    [refused] = c.input(InstanceRequested(name="w", flavor=TINY, network="net-none"), "i-4")
    assert isinstance(refused, PortAllocationFailed)
    assert refused.instance_id == "i-4"
    assert c.input(InstanceDeleted(host=None), "i-4") == [PortDeleted()]
    assert c.input(InstanceDeleted(host=None), "i-4") == []


def test_an_instance_deleted_before_its_request_gets_no_port() -> None:
    c = Controller()
    network_id, _ = c.network("10.0.0.0/24")
    c.input(InstanceDeleted(host=None), "i-3")
    assert c.input(InstanceRequested(name="w", flavor=TINY, network=network_id), "i-3") == []


def test_a_port_requested_with_a_host_is_assigned_to_it() -> None:
    c = Controller()
    network_id, _ = c.network("10.0.0.0/24")
    port_id = "port-h"
    out = c.input(PortRequested(network_id=network_id, host="hv-9"), port_id)
    assert out[1:] == [PortHostAssigned(host="hv-9")]


def test_repeated_requests_decide_nothing() -> None:
    c = Controller()
    network_id, _ = c.network("10.0.0.0/24")
    assert c.input(NetworkRequested(name="n", cidr="10.0.0.0/24"), network_id) == []
    port_id, _ = c.port(network_id)
    assert c.input(PortRequested(network_id=network_id), port_id) == []


# -- rebuilds: any fold order of the log decides the same ---------------------------------------


def _workload(c: Controller, rng: random.Random, steps: int) -> None:
    networks = [c.network("10.0.0.0/29")[0], c.network("fd00::/124")[0]]
    ports: list[str] = []
    for _ in range(steps):
        roll = rng.random()
        if roll < 0.6:
            port_id, outcome = c.port(rng.choice(networks))
            if isinstance(outcome, PortAllocated):
                ports.append(port_id)
        elif roll < 0.9 and ports:
            c.input(PortDeletionRequested(), ports.pop(rng.randrange(len(ports))))
        else:
            deleted = networks.pop(0)
            if not c.state.networks[deleted].ports:
                c.input(NetworkDeletionRequested(), deleted)
            else:
                networks.append(deleted)
            if not networks or len(networks) < 2:
                networks.append(c.network("10.0.0.0/29")[0])


def _shuffled_by_aggregate(log: list[Envelope], rng: random.Random) -> list[Envelope]:
    """The log as a rebuild may read it: each aggregate's events in order, aggregates mixed."""
    streams: dict[str, list[Envelope]] = {}
    for envelope in log:
        streams.setdefault(envelope.aggregate_id, []).append(envelope)
    queues = [list(reversed(s)) for s in streams.values()]
    out: list[Envelope] = []
    while queues:
        queue = rng.choice(queues)
        out.append(queue.pop())
        if not queue:
            queues.remove(queue)
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(5, 60))
def test_a_rebuild_in_any_order_decides_what_the_live_controller_decides(
    seed: int, steps: int
) -> None:
    rng = random.Random(seed)
    live = Controller()
    _workload(live, rng, steps)
    rebuilt = Controller()
    for envelope in _shuffled_by_aggregate(live.log, rng):
        rebuilt.state = evolve(rebuilt.state, envelope)
    rebuilt = Controller(restore(snapshot(rebuilt.state)))
    rebuilt.counter = live.counter
    for network_id, record in live.state.networks.items():
        assert sorted(record.used) == sorted(rebuilt.state.networks[network_id].used)
        assert live.port(network_id) == rebuilt.port(network_id)
    assert sorted(live.state.vnis) == sorted(rebuilt.state.vnis)
    assert sorted(live.state.macs) == sorted(rebuilt.state.macs)


def test_no_address_is_in_use_twice_after_a_long_run() -> None:
    c = Controller()
    rng = random.Random(7)
    _workload(c, rng, 400)
    holders: Sequence[list[str]] = [
        h for record in c.state.networks.values() for h in record.used.values()
    ]
    assert all(len(h) == 1 for h in holders)
    assert all(len(h) == 1 for h in c.state.macs.values())


def test_refused_networks_and_ports_can_be_deleted() -> None:
    c = Controller()
    c.input(NetworkRequested(name="n", cidr="10.0.0.1/24"), "net-bad")
    assert c.input(NetworkDeletionRequested(), "net-bad") == [NetworkDeleted()]
    _, refused = c.port("net-nowhere")
    assert isinstance(refused, PortAllocationFailed)
    assert c.input(PortDeletionRequested(), f"port-{c.counter}") == [PortDeleted()]
    assert c.input(PortDeletionRequested(), f"port-{c.counter}") == []
