"""Boot volumes and ports in the agent's pure core: an instance spawns once both exist, in any
order and across restarts, and fails for good when either cannot be made."""

from __future__ import annotations

import random
from collections.abc import Sequence

import orjson
import pytest

from virga_compute.ceph_access import CephSettings
from virga_compute.config import ComputeConfig
from virga_compute.core.decide import decide, on_ready
from virga_compute.core.fold import evolve
from virga_compute.core.model import ComputeState
from virga_compute.core.snapshot import restore, snapshot
from virga_compute.core.spec import CephMonitor, DiskSpec, InstanceSpec, NicSpec, RbdSource
from virga_compute.drivers.domain_xml import DomainSettings, build_domain_xml
from virga_compute.effects.intents import Reconcile, Spawn
from virga_events import Envelope, Event, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.compute import InstanceFailed, InstanceStarted
from virga_events.catalog.network import (
    AllocationPool,
    NetworkCreated,
    PortAllocationFailed,
    PortBindingFailed,
    PortBound,
    instance_port_id,
)
from virga_events.catalog.scheduler import InstanceScheduled
from virga_events.catalog.storage import VolumeCreated, VolumeFailed
from virga_runtime import Emit, Intent

HOST = "host-1"
ME = f"compute@{HOST}"
SECRET = "5c2e5e0e-6c5e-4a52-9a1f-0e7f1f6f2a10"
CEPH = CephSettings(monitors=(CephMonitor("10.0.0.1", 6789),), pool="vms", secret_uuid=SECRET)
CONFIG = ComputeConfig(host=HOST, ceph=CEPH)
SMALL = Flavor(name="m1.small", vcpus=2, ram_mb=512, disk_gb=10)
MAC, TAP = "fa:16:3e:00:00:01", "vtap-1"


def scheduled(
    instance_id: str = "i-1",
    *,
    image: str | None = "img-1",
    network: str | None = None,
    host: str = HOST,
    attempt: int = 1,
) -> Envelope:
    event = InstanceScheduled(
        host=host,
        rack="r1",
        zone="z1",
        attempt=attempt,
        name=f"vm {instance_id}",
        flavor=SMALL,
        image=image,
        network=network,
    )
    return new_event(event, aggregate_id=instance_id, tenant_id="t-1", producer="scheduler")


def storage(event: Event, volume_id: str = "i-1") -> Envelope:
    return new_event(event, aggregate_id=volume_id, tenant_id="t-1", producer="storage")


def volume_created(instance_id: str = "i-1") -> Envelope:
    return storage(VolumeCreated(name="boot", size_gb=10, instance_id=instance_id), instance_id)


def volume_failed(instance_id: str = "i-1", reason: str = "pool full") -> Envelope:
    return storage(VolumeFailed(operation="create", reason=reason), instance_id)


def network(event: Event, instance_id: str = "i-1") -> Envelope:
    port = instance_port_id(instance_id)
    return new_event(event, aggregate_id=port, tenant_id="t-1", producer="network")


def port_bound(instance_id: str = "i-1", host: str = HOST) -> Envelope:
    event = PortBound(
        host=host, network_id="n-1", tap=TAP, mac=MAC, ips=("10.0.0.5",), instance_id=instance_id
    )
    return network(event, instance_id)


def reported(event: Event, instance_id: str = "i-1", cause: Envelope | None = None) -> Envelope:
    return new_event(event, aggregate_id=instance_id, tenant_id="t-1", producer=ME, causation=cause)


def fold(state: ComputeState, *envelopes: Envelope) -> ComputeState:
    for envelope in envelopes:
        state = evolve(state, envelope)
    return state


def live(
    state: ComputeState, envelope: Envelope, config: ComputeConfig = CONFIG
) -> Sequence[Intent]:
    return decide(config, evolve(state, envelope), envelope)


def fresh() -> ComputeState:
    return ComputeState(host=HOST)


def boot_disk(instance_id: str = "i-1") -> DiskSpec:
    source = RbdSource(
        "vms", f"volume-{instance_id}", CEPH.monitors, auth_user="admin", secret_uuid=SECRET
    )
    return DiskSpec("vda", source, serial=instance_id[:20])


def spec(*, disks: tuple[DiskSpec, ...] = (), nics: tuple[NicSpec, ...] = ()) -> InstanceSpec:
    return InstanceSpec("i-1", "vm i-1", vcpus=2, ram_mb=512, disks=disks, nics=nics)


def failed(phase: str, reason: str) -> Emit:
    return Emit(InstanceFailed(host=HOST, phase=phase, reason=reason), "i-1", "t-1")  # type: ignore[arg-type]


# -- boot volume ------------------------------------------------------------------------------


@pytest.mark.parametrize("volume_first", [False, True])
def test_an_instance_from_an_image_spawns_once_its_boot_volume_exists(volume_first: bool) -> None:
    state = fresh()
    first, second = (
        (volume_created(), scheduled()) if volume_first else (scheduled(), volume_created())
    )
    assert live(state, first) == ()
    assert live(state, second) == [Spawn(spec(disks=(boot_disk(),)), "t-1", HOST)]


def test_a_repeated_volume_report_spawns_nothing_more() -> None:
    state = fresh()
    live(state, scheduled())
    assert live(state, volume_created()) != ()
    assert live(state, volume_created()) == ()  # same batch: the spawn's outcome is not known
    fold(state, reported(InstanceStarted(host=HOST)))
    assert live(state, volume_created()) == ()


def test_a_volume_of_another_instance_or_a_user_volume_spawns_nothing() -> None:
    state = fold(fresh(), scheduled())
    assert live(state, volume_created("i-2")) == ()
    assert (
        live(
            state,
            storage(VolumeCreated(name="data", size_gb=1), "v-9"),
        )
        == ()
    )
    assert state.missing(state.instances["i-1"]) == ["volume"]


@pytest.mark.parametrize("failure_first", [False, True])
def test_a_failed_boot_volume_fails_the_instance_for_good(failure_first: bool) -> None:
    state = fresh()
    events = [volume_failed(), scheduled()] if failure_first else [scheduled(), volume_failed()]
    assert live(state, events[0]) == ()
    assert live(state, events[1]) == [failed("volume", "boot volume failed: pool full")]
    fold(state, reported(InstanceFailed(host=HOST, phase="volume", reason="x")))
    assert state.instances == {}  # it leaves the host: nothing to spawn, nothing to reconcile


def test_without_ceph_an_instance_from_an_image_fails_its_spawn_saying_why() -> None:
    state = fold(fresh(), scheduled())
    [intent] = live(state, volume_created(), ComputeConfig(host=HOST))
    assert isinstance(intent, Emit)
    assert isinstance(intent.payload, InstanceFailed)
    assert "no Ceph cluster configured" in intent.payload.reason


# -- port ---------------------------------------------------------------------------------------


def test_an_instance_with_a_network_spawns_with_its_ports_mac_and_tap() -> None:
    state = fresh()
    assert live(state, scheduled(image=None, network="n-1")) == ()
    assert live(state, port_bound(host="host-2")) == ()  # bound elsewhere is not for us
    assert live(state, port_bound()) == [Spawn(spec(nics=(NicSpec(MAC, TAP),)), "t-1", HOST)]


def network_created(cidr: str = "10.0.0.0/24", gateway: str = "10.0.0.1") -> Envelope:
    pools = (AllocationPool(start="10.0.0.2", end="10.0.0.254"),)
    event = NetworkCreated(
        name="net", cidr=cidr, vni=1000, gateway_ip=gateway, allocation_pools=pools
    )
    return new_event(event, aggregate_id="n-1", tenant_id="t-1", producer="network")


def test_the_guest_is_told_its_address_prefix_and_gateway() -> None:
    # No DHCP runs on Virga's networks: the domain definition carries the address (fw_cfg).
    state = fold(fresh(), network_created(), scheduled(image=None, network="n-1"))
    [spawn] = live(state, port_bound())
    assert isinstance(spawn, Spawn)
    nic = NicSpec(MAC, TAP, address="10.0.0.5/24", gateway="10.0.0.1")
    assert spawn.spec == spec(nics=(nic,))
    xml = build_domain_xml(spawn.spec, DomainSettings(domain_type="qemu"))
    assert f"virga:ip=10.0.0.5/24;gw=10.0.0.1;mac={MAC}" in xml
    assert "opt/org.virga/network" in xml


def test_with_an_image_and_a_network_it_waits_for_both_in_any_order() -> None:
    for seed in range(6):
        events = [scheduled(network="n-1"), volume_created(), port_bound()]
        random.Random(seed).shuffle(events)
        state = fresh()
        decisions = [live(state, e) for e in events]
        assert decisions[:2] == [(), ()]
        nic = NicSpec(MAC, TAP)
        assert decisions[2] == [Spawn(spec(disks=(boot_disk(),), nics=(nic,)), "t-1", HOST)]


@pytest.mark.parametrize(
    "failure",
    [
        PortAllocationFailed(network_id="n-1", reason="pool exhausted", instance_id="i-1"),
        PortBindingFailed(host=HOST, reason="no bridge", instance_id="i-1"),
    ],
)
def test_a_port_that_cannot_be_made_or_bound_here_fails_the_instance(failure: Event) -> None:
    state = fold(fresh(), scheduled(image=None, network="n-1"))
    reason = failure.reason  # type: ignore[attr-defined]
    assert live(state, network(failure)) == [failed("port", f"port failed: {reason}")]


def test_a_binding_failure_on_another_host_is_not_ours() -> None:
    state = fold(fresh(), scheduled(image=None, network="n-1"))
    other = PortBindingFailed(host="host-2", reason="x", instance_id="i-1")
    assert live(state, network(other)) == ()


# -- restarts -------------------------------------------------------------------------------------


def test_on_ready_leaves_waiting_instances_alone_and_reports_failures_a_crash_cut_off() -> None:
    state = fold(
        fresh(),
        scheduled("i-1"),  # waits for its volume
        scheduled("i-2"),
        volume_failed("i-2"),  # failed while the agent was down
        scheduled("i-3"),
        volume_created("i-3"),  # ready, never started: reconciled (spawned again)
    )
    [_, reconcile, failure] = on_ready(CONFIG, state)
    assert isinstance(reconcile, Reconcile)
    assert [e.spec.instance_id for e in reconcile.expected] == ["i-3"]
    assert reconcile.expected[0].spec.disks == (boot_disk("i-3"),)
    assert set(reconcile.leave_alone) == {"i-1", "i-2"}
    assert failure == Emit(
        InstanceFailed(host=HOST, phase="volume", reason="boot volume failed: pool full"),
        "i-2",
        "t-1",
    )


def test_a_rebuild_in_any_order_ends_in_the_live_state() -> None:
    inputs = [
        network_created(),
        scheduled("i-1", network="n-1"),
        volume_created("i-1"),
        port_bound("i-1"),
        scheduled("i-2"),
        volume_failed("i-2"),
        scheduled("i-3", image=None, network="n-1"),
        network(PortAllocationFailed(network_id="n-1", reason="full", instance_id="i-3"), "i-3"),
    ]
    outcomes = [
        reported(InstanceStarted(host=HOST), "i-1"),
        reported(InstanceFailed(host=HOST, phase="volume", reason="x"), "i-2"),
        reported(InstanceFailed(host=HOST, phase="port", reason="x"), "i-3"),
    ]
    live_state = fold(fresh(), *inputs, *outcomes)
    for seed in range(6):
        shuffled = list(inputs)
        random.Random(seed).shuffle(shuffled)
        assert fold(fresh(), *shuffled, *outcomes) == live_state
    assert list(live_state.instances) == ["i-1"]
    assert restore(orjson.loads(orjson.dumps(snapshot(live_state)))) == live_state


def test_a_failed_spawn_caused_by_the_volume_event_moves_the_instance_away() -> None:
    state = fresh()
    live(state, scheduled())
    made = volume_created()
    assert live(state, made) != ()
    failure = InstanceFailed(host=HOST, phase="spawn", reason="qemu: cannot open disk")
    fold(state, reported(failure, cause=made))
    assert state.instances == {}  # it never comes back here by a restart's reconciliation


def test_on_ready_fails_a_ready_instance_this_host_can_no_longer_build() -> None:
    state = fold(fresh(), scheduled(), volume_created())
    [_, reconcile, failure] = on_ready(ComputeConfig(host=HOST), state)  # no Ceph any more
    assert isinstance(reconcile, Reconcile)
    assert reconcile.leave_alone == ("i-1",)
    assert isinstance(failure, Emit)
    assert isinstance(failure.payload, InstanceFailed)
    assert failure.payload.phase == "spawn"
