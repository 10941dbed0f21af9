"""Deleted resources leave the projection a retention window after their deletion (event
time), leave a bounded tombstone, and a rebuild forgets exactly what a live gateway forgot."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.unit.gateway.events import envelope, fold, requested, scheduled

from virga_events import Envelope
from virga_events.catalog import api, compute, l3, scheduler, storage
from virga_events.catalog import network as net
from virga_gateway import retention
from virga_gateway.auth import Principal
from virga_gateway.images.queries import find_image
from virga_gateway.instances.queries import find_instance, list_instances
from virga_gateway.networks.queries import find_network
from virga_gateway.ports.queries import find_port
from virga_gateway.problems import Problem
from virga_gateway.state import GatewayState, evolve, restore, snapshot
from virga_gateway.volumes.queries import find_volume

HOUR = 3600
ALICE = Principal("tok-a", "tenant", "t1")


def tick(seconds: float) -> Envelope:
    """Any fact moves the projection's clock: a host's heartbeat here."""
    return envelope(compute.HostHeartbeat(running=0), "h1", producer="compute@h1", seconds=seconds)


def instance_life(instance: str, start: float) -> list[Envelope]:
    return [
        requested(instance, seconds=start),
        scheduled(instance, "h1", seconds=start + 1),
        envelope(compute.InstanceStarted(host="h1"), instance, producer="compute@h1",
                 seconds=start + 2),
        envelope(api.InstanceDeletionRequested(), instance, tenant="t1", seconds=start + 3),
        envelope(compute.InstanceDeleted(host="h1"), instance, producer="compute@h1",
                 seconds=start + 4),
        envelope(scheduler.ClaimReleased(host="h1", reason="deleted"), instance,
                 producer="scheduler", seconds=start + 5),
    ]  # fmt: skip


def test_a_deleted_instance_is_kept_for_the_retention_window_then_forgotten() -> None:
    state = fold(*instance_life("i1", 0), *instance_life("i2", 10))
    fold(tick(4 + HOUR - 1), state=state)
    assert find_instance(state, ALICE, "i1").status == "DELETED"
    fold(tick(4 + HOUR), state=state)
    assert "i1" not in state.instances
    assert "i2" in state.instances
    with pytest.raises(Problem) as missing:
        find_instance(state, ALICE, "i1")
    assert missing.value.status == 404
    assert [key[1] for key in state.instance_order] == ["i2"]
    assert [key[1] for key in state.tenant_instance_order["t1"]] == ["i2"]
    assert "i1" not in state.claims
    assert list_instances(state, ALICE, limit=10, status="DELETED").items[0].id == "i2"
    assert "instance:i1" in state.forgotten


def test_the_window_is_a_setting() -> None:
    state = GatewayState()
    for each in instance_life("i1", 0):
        evolve(state, each, timedelta(seconds=60))
    evolve(state, tick(64), timedelta(seconds=60))
    assert "i1" not in state.instances


def test_a_live_instance_and_an_undeleted_request_are_never_forgotten() -> None:
    life = instance_life("i1", 0)
    state = fold(*life[:3], requested("i2", seconds=1), tick(10 * HOUR))
    assert set(state.instances) == {"i1", "i2"}
    assert state.expiring == []


def test_a_late_event_about_a_forgotten_instance_does_not_bring_it_back() -> None:
    state = fold(*instance_life("i1", 0), tick(2 * HOUR))
    late = [
        envelope(compute.InstanceStopped(host="h1"), "i1", producer="compute@h1", seconds=7),
        envelope(api.InstanceActionRequested(action="stop"), "i1", tenant="t1", seconds=8),
        envelope(net.PortAllocated(network_id="n1", mac="m", ips=("10.0.0.5",),
                                   security_groups=(), instance_id="i1"),
                 "port-i1", producer="network", seconds=9),
        envelope(storage.VolumeCreated(name="boot", size_gb=1, instance_id="i1"), "i1",
                 producer="storage", seconds=9),
    ]  # fmt: skip
    fold(*late, state=state)
    assert "i1" not in state.instances


def test_a_rebuild_reading_the_inputs_first_forgets_exactly_what_live_folding_forgot() -> None:
    events = [e for n in range(20) for e in instance_life(f"i{n:02d}", 300 * n)]
    events.append(tick(2 * HOUR + 3000))  # forgets those deleted before 3000 s
    live = fold(*events)
    rebuilt = fold(
        *[e for e in events if e.producer != "gateway"],
        *[e for e in events if e.producer == "gateway"],
    )
    assert live.instances == rebuilt.instances
    assert live.instance_order == rebuilt.instance_order
    assert live.tenant_instance_order == rebuilt.tenant_instance_order
    assert set(live.forgotten) == set(rebuilt.forgotten)
    assert sorted(live.expiring) == sorted(rebuilt.expiring)
    assert len(live.forgotten) == 20  # deleted at 300n+4 <= 3000 + 2h - 1h for every n


def test_a_stub_of_the_services_facts_waits_for_its_request_before_being_forgotten() -> None:
    # A rebuild reads the agents' facts first: the deletion is known, the request not yet.
    life = instance_life("i1", 0)
    state = fold(*[e for e in life if e.producer != "gateway"], tick(2 * HOUR))
    assert "i1" in state.instances
    assert not state.forgotten
    fold(*[e for e in life if e.producer == "gateway"], state=state)
    assert "i1" not in state.instances
    assert "instance:i1" in state.forgotten


def test_volumes_networks_ports_and_images_are_forgotten_too() -> None:
    events = [
        envelope(storage.VolumeRequested(name="v", size_gb=1), "v1", tenant="t1", seconds=0),
        envelope(storage.VolumeCreated(name="v", size_gb=1), "v1", producer="storage", seconds=1),
        envelope(storage.VolumeDeletionRequested(), "v1", tenant="t1", seconds=2),
        envelope(storage.VolumeDeleted(), "v1", producer="storage", seconds=3),
        envelope(net.NetworkRequested(name="n", cidr="10.0.0.0/24"), "n1", tenant="t1"),
        envelope(net.PortRequested(network_id="n1"), "p1", tenant="t1", seconds=1),
        envelope(net.PortDeletionRequested(), "p1", tenant="t1", seconds=2),
        envelope(net.PortDeleted(), "p1", producer="network", seconds=3),
        envelope(net.NetworkDeletionRequested(), "n1", tenant="t1", seconds=4),
        envelope(net.NetworkDeleted(), "n1", producer="network", seconds=5),
        envelope(storage.ImageImportRequested(name="i", disk_format="raw", visibility="private"),
                 "img1", tenant="t1"),
        envelope(storage.ImageDeletionRequested(), "img1", tenant="t1", seconds=2),
        envelope(storage.ImageDeleted(), "img1", producer="storage", seconds=3),
    ]  # fmt: skip
    state = fold(*events)
    assert state.volumes["v1"].deleted
    assert state.ports["p1"].deleted
    fold(tick(HOUR + 5), state=state)
    assert not state.volumes
    assert not state.networks
    assert not state.ports
    assert not state.images
    assert not state.volume_order
    assert not state.tenant_volume_order
    assert not state.tenant_network_order
    assert not state.tenant_port_order
    assert not state.network_port_order
    assert not state.image_order
    for find, resource in [
        (find_volume, "v1"),
        (find_network, "n1"),
        (find_port, "p1"),
        (find_image, "img1"),
    ]:
        with pytest.raises(Problem) as missing:
            find(state, ALICE, resource)
        assert missing.value.status == 404
    # A late fact about the port's forgotten network makes no stub of it.
    bound = net.PortBound(host="h1", network_id="n1", tap="tap0", mac="m", ips=("10.0.0.5",))
    fold(envelope(bound, "p1", producer="network-agent", seconds=9), state=state)
    assert not state.networks
    assert not state.ports


def test_floating_ips_routers_and_external_networks_are_forgotten_too() -> None:
    pool = (net.AllocationPool(start="203.0.113.10", end="203.0.113.20"),)
    external = l3.ExternalNetworkCreated(
        name="x", cidr="203.0.113.0/24", gateway_ip="203.0.113.1", allocation_pools=pool,
        host_interface="br-ex",
    )  # fmt: skip
    requested_external = l3.ExternalNetworkRequested(
        name="x", cidr="203.0.113.0/24", gateway_ip="203.0.113.1", host_interface="br-ex"
    )
    events = [
        envelope(requested_external, "x1", tenant=None),
        envelope(external, "x1", producer="network", seconds=1),
        envelope(l3.FloatingIpRequested(external_network_id="x1"), "f1", tenant="t1", seconds=2),
        envelope(l3.FloatingIpAllocated(external_network_id="x1", ip="203.0.113.10"), "f1",
                 tenant="t1", producer="network", seconds=3),
        envelope(l3.RouterRequested(name="r", external_network_id="x1"), "r1", tenant="t1",
                 seconds=2),
        envelope(l3.RouterCreated(name="r", external_network_id="x1", external_ip="203.0.113.11"),
                 "r1", tenant="t1", producer="network", seconds=3),
        envelope(l3.FloatingIpReleaseRequested(), "f1", tenant="t1", seconds=4),
        envelope(l3.FloatingIpReleased(external_network_id="x1", ip="203.0.113.10"), "f1",
                 tenant="t1", producer="network", seconds=5),
        envelope(l3.RouterDeletionRequested(), "r1", tenant="t1", seconds=4),
        envelope(l3.RouterDeleted(external_network_id="x1", external_ip="203.0.113.11"), "r1",
                 tenant="t1", producer="network", seconds=5),
        envelope(l3.ExternalNetworkDeletionRequested(), "x1", tenant=None, seconds=6),
        envelope(l3.ExternalNetworkDeleted(), "x1", producer="network", seconds=7),
    ]  # fmt: skip
    state = fold(*events)
    assert state.floating_ips["f1"].released
    fold(tick(HOUR + 8), state=state)
    assert not state.floating_ips
    assert not state.routers
    assert not state.external_networks
    assert not state.tenant_floating_ip_order
    assert not state.tenant_router_order
    assert not state.external_network_order
    # A late fact about the forgotten floating IP or its network makes no stub of either.
    late = l3.FloatingIpReleased(external_network_id="x1", ip="203.0.113.10")
    fold(envelope(late, "f1", tenant="t1", producer="network", seconds=9), state=state)
    assert not state.floating_ips
    assert not state.external_networks


def test_tombstones_are_bounded_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "TOMBSTONE_LIMIT", 5)
    state = fold(*[e for n in range(8) for e in instance_life(f"i{n}", 10 * n)], tick(2 * HOUR))
    assert list(state.forgotten) == [f"instance:i{n}" for n in range(3, 8)]
    assert not state.instances


def test_a_snapshot_round_trips_the_retention_tables() -> None:
    state = fold(*instance_life("i1", 0), *instance_life("i2", HOUR), tick(HOUR + 100))
    assert state.forgotten
    assert state.expiring
    assert state.clock is not None
    restored = restore(snapshot(state))
    assert restored == state
    # And folding on from either gives the same state.
    later = tick(3 * HOUR)
    assert fold(later, state=restored) == fold(later, state=state)
