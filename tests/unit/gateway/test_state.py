"""The gateway's fold: what users read after each fact, whatever order the facts arrive in."""

from __future__ import annotations

import pytest
from tests.unit.gateway.events import SMALL, at, envelope, fold, requested, scheduled

from virga_events import Envelope, Event
from virga_events.catalog import Flavor, api, compute, network, scheduler, storage
from virga_events.catalog.network import instance_port_id
from virga_gateway.instances.model import HISTORY_LIMIT
from virga_gateway.instances.views import instance_view
from virga_gateway.state import GatewayState, restore, snapshot

MAC = "fa:16:3e:00:00:01"


def by_compute(event: Event, instance: str = "i1", seconds: float = 2) -> Envelope:
    return envelope(event, instance, producer="compute@h1", seconds=seconds)


def by_scheduler(event: Event, aggregate: str = "i1", seconds: float = 1) -> Envelope:
    return envelope(event, aggregate, producer="scheduler", seconds=seconds)


def test_an_instance_goes_through_its_statuses() -> None:
    state = fold(requested("i1"))
    instance = state.instances["i1"]
    assert (instance.status, instance.host, instance.fault) == ("BUILDING", None, None)
    steps: list[tuple[Envelope, str]] = [
        (scheduled("i1", "h1", seconds=1), "BUILDING"),
        (by_compute(compute.InstanceStarted(host="h1"), seconds=2), "RUNNING"),
        (envelope(api.InstanceActionRequested(action="stop"), "i1", seconds=3), "RUNNING"),
        (by_compute(compute.InstanceStopped(host="h1"), seconds=4), "STOPPED"),
        (by_compute(compute.InstanceRebooted(host="h1"), seconds=5), "RUNNING"),
        (envelope(api.InstanceDeletionRequested(), "i1", seconds=6), "DELETING"),
        (by_compute(compute.InstanceFailed(host="h1", phase="delete", reason="x"), seconds=7),
            "DELETING"),
        (by_compute(compute.InstanceDeleted(host="h1"), seconds=8), "DELETED"),
    ]  # fmt: skip
    for step, (event, status) in enumerate(steps, start=1):
        state = fold(event, state=state)
        assert instance.status == status, event.type
        assert instance.updated_at == at(step)
    assert instance.host == "h1"
    assert instance.created_at == at(0)


def test_scheduling_failure_is_an_error_with_the_schedulers_reason() -> None:
    failed = scheduler.InstanceSchedulingFailed(reason="no host fits 1 vCPU", attempts=3)
    state = fold(requested("i1"), scheduled("i1"), by_scheduler(failed, seconds=3))
    instance = state.instances["i1"]
    assert (instance.status, instance.fault, instance.host) == (
        "ERROR",
        "no host fits 1 vCPU",
        None,
    )


def test_a_failed_spawn_stays_building_until_rescheduled_and_started() -> None:
    state = fold(
        requested("i1"),
        scheduled("i1", "h1"),
        by_compute(compute.InstanceFailed(host="h1", phase="spawn", reason="disk full")),
    )
    instance = state.instances["i1"]
    assert (instance.status, instance.fault) == ("BUILDING", "disk full")
    state = fold(
        by_scheduler(scheduler.ClaimReleased(host="h1", reason="spawn failed"), seconds=3),
        scheduled("i1", "h2", seconds=4),
        by_compute(compute.InstanceStarted(host="h2"), seconds=5),
        state=state,
    )
    assert (instance.status, instance.host, instance.fault) == ("RUNNING", "h2", None)


@pytest.mark.parametrize("phase", ["start", "stop", "reboot", "restart"])
def test_other_failures_keep_the_status_and_set_the_fault(phase: str) -> None:
    failed = compute.InstanceFailed(host="h1", phase=phase, reason="libvirt said no")  # type: ignore[arg-type]
    state = fold(
        requested("i1"),
        scheduled("i1"),
        by_compute(compute.InstanceStarted(host="h1")),
        by_compute(failed, seconds=3),
    )
    assert (state.instances["i1"].status, state.instances["i1"].fault) == (
        "RUNNING",
        "libvirt said no",
    )


def test_a_guest_that_stops_on_its_own_shows_why_and_its_restart() -> None:
    state = fold(requested("i1"), scheduled("i1"), by_compute(compute.InstanceStarted(host="h1")))
    instance = state.instances["i1"]
    assert instance_view(instance).restart_policy == "never"
    crashed = compute.InstanceStopped(host="h1", cause="crashed")
    state = fold(by_compute(crashed, seconds=3), state=state)
    view = instance_view(instance)
    assert (view.status, view.stop_cause) == ("STOPPED", "crashed")
    again = compute.InstanceRestarted(host="h1", cause="crashed", policy="on-crash")
    state = fold(by_compute(again, seconds=4), state=state)
    view = instance_view(instance)
    assert (view.status, view.stop_cause) == ("RUNNING", None)
    assert [e.type for e in instance.history][-2:] == ["InstanceStopped", "InstanceRestarted"]
    assert restore(snapshot(state)).instances["i1"] == instance


def test_a_lost_domain_is_a_fault_naming_the_host() -> None:
    state = fold(requested("i1"), scheduled("i1"), by_compute(compute.InstanceStarted(host="h1")))
    state = fold(by_compute(compute.InstanceDomainLost(host="h1"), seconds=3), state=state)
    assert state.instances["i1"].fault == "domain lost on h1"


LIFE: list[Envelope] = [
    requested("i1", seconds=0),
    scheduled("i1", "h1", seconds=1),
    by_compute(compute.InstanceStarted(host="h1"), seconds=2),
    envelope(api.InstanceActionRequested(action="stop"), "i1", tenant="t1", seconds=3),
    by_compute(compute.InstanceStopped(host="h1"), seconds=4),
    envelope(api.InstanceDeletionRequested(), "i1", tenant="t1", seconds=5),
    by_compute(compute.InstanceDeleted(host="h1"), seconds=6),
    by_scheduler(scheduler.ClaimReleased(host="h1", reason="deleted"), seconds=7),
]


@pytest.mark.parametrize("length", range(1, len(LIFE) + 1))
def test_a_rebuild_that_reads_inputs_first_shows_what_live_folding_showed(length: int) -> None:
    # Live, the gateway folds in causal order; a rebuild folds the scheduler's and agents'
    # facts first, then its own requests. Users must not see the difference.
    events = LIFE[:length]
    live = fold(*events)
    inputs_first = fold(
        *[e for e in events if e.producer != "gateway"],
        *[e for e in events if e.producer == "gateway"],
    )
    own_first = fold(
        *[e for e in events if e.producer == "gateway"],
        *[e for e in events if e.producer != "gateway"],
    )
    expected = instance_view(live.instances["i1"])
    assert instance_view(inputs_first.instances["i1"]) == expected
    assert instance_view(own_first.instances["i1"]) == expected
    assert inputs_first.instances["i1"].history == live.instances["i1"].history
    assert inputs_first.hosts == live.hosts


def test_host_allocation_sums_claims_and_frees_released_ones() -> None:
    registered = compute.HostRegistered(rack="r1", zone="az1", vcpus=8, ram_mb=16384, disk_gb=100)
    state = fold(
        scheduled("i1", "h1"),  # a claim may be folded before its host registers
        envelope(registered, "h1", producer="compute@h1", seconds=2),
        scheduled("i2", "h1"),
        scheduled("i2", "h1"),  # a duplicate claim counts once
    )
    host = state.hosts["h1"]
    assert host.registered
    assert (host.allocated.vcpus, host.allocated.ram_mb, host.allocated.disk_gb) == (2, 4096, 40)
    state = fold(
        by_scheduler(scheduler.ClaimReleased(host="h1", reason="deleted"), "i1"),
        by_scheduler(scheduler.ClaimReleased(host="h9", reason="never there"), "i2"),
        state=state,
    )
    assert host.allocated.vcpus == SMALL.vcpus
    assert state.claims == {"i2": {"h1": SMALL}}


def test_host_up_or_down_follows_the_newest_fact_by_event_time() -> None:
    registered = compute.HostRegistered(rack="r", zone="z", vcpus=1, ram_mb=1, disk_gb=1)
    down = by_scheduler(scheduler.HostMarkedDown(last_heartbeat_at=None), "h1", seconds=5)
    up_again = envelope(registered, "h1", producer="compute@h1", seconds=9)
    stale = envelope(registered, "h1", producer="compute@h1", seconds=1)
    assert fold(stale, down).hosts["h1"].state == "down"
    assert fold(down, stale).hosts["h1"].state == "down"
    assert fold(down, up_again).hosts["h1"].state == "up"
    beat = envelope(compute.HostHeartbeat(running=0), "h1", producer="compute@h1", seconds=7)
    assert fold(stale, beat, down).hosts["h1"].last_heartbeat_at == at(7)


def test_the_tenancy_index_keeps_each_tenants_instances_in_creation_order() -> None:
    state = fold(
        requested("b", tenant="t1", seconds=2),
        requested("x", tenant="t2", seconds=1),
        requested("a", tenant="t1", seconds=2),
        requested("c", tenant="t1", seconds=1),
    )
    assert [key[1] for key in state.tenant_instance_order["t1"]] == ["c", "a", "b"]
    assert [key[1] for key in state.tenant_instance_order["t2"]] == ["x"]
    assert [key[1] for key in state.instance_order] == ["c", "x", "a", "b"]


def test_server_group_members_are_requested_and_not_deleted() -> None:
    created = envelope(
        api.ServerGroupCreated(name="g", policy="affinity", scope="host"), "g1", tenant="t1"
    )
    deleted_early = by_compute(compute.InstanceDeleted(host=None), "i2")
    state = fold(
        deleted_early,  # a rebuild may fold the deletion before the request
        requested("i1", server_group="g1"),
        requested("i2", server_group="g1"),
        created,
        requested("i3", server_group="g1"),
    )
    assert state.group_members["g1"] == ["i1", "i3"]
    state = fold(by_compute(compute.InstanceDeleted(host="h1"), "i1", seconds=9), state=state)
    assert state.group_members["g1"] == ["i3"]


def test_history_is_in_event_time_order_bounded_and_free_of_duplicates() -> None:
    started = by_compute(compute.InstanceStarted(host="h1"), seconds=2)
    state = fold(started, requested("i1"), scheduled("i1", seconds=1), started)
    assert [e.type for e in state.instances["i1"].history] == [
        "InstanceRequested",
        "InstanceScheduled",
        "InstanceStarted",
    ]
    reboots = [
        by_compute(compute.InstanceRebooted(host="h1"), seconds=10 + n)
        for n in range(HISTORY_LIMIT + 5)
    ]
    state = fold(*reboots, state=state)
    history = state.instances["i1"].history
    assert len(history) == HISTORY_LIMIT
    assert history[-1].event_id == reboots[-1].event_id
    assert state.instances["i1"].created_at is not None  # the request itself is remembered


def test_an_instances_history_has_its_boot_volume_and_port_facts_but_not_other_ones() -> None:
    # Following an instance's history shows every step of a boot with an image and a network.
    port = instance_port_id("i1")
    facts = [
        envelope(
            storage.VolumeCreated(name="boot", size_gb=20, instance_id="i1"),
            "i1",
            producer="storage",
            seconds=1.5,
        ),
        envelope(
            network.PortAllocated(
                network_id="n1", mac=MAC, ips=("10.0.0.2",), security_groups=(), instance_id="i1"
            ),
            port,
            producer="network",
            seconds=0.5,
        ),
        envelope(
            network.PortBound(
                host="h1", network_id="n1", tap="vgt1", mac=MAC, ips=("10.0.0.2",), instance_id="i1"
            ),
            port,
            producer="network@h1",
            seconds=1.6,
        ),
        # A user's volume and a port of no instance belong to no instance's history.
        envelope(storage.VolumeCreated(name="data", size_gb=1), "v9", producer="storage"),
        envelope(
            network.PortAllocated(network_id="n1", mac=MAC, ips=(), security_groups=()),
            "p9",
            producer="network",
        ),
    ]
    state = fold(*facts, requested("i1", image="img", network="n1"), scheduled("i1"))
    assert [e.type for e in state.instances["i1"].history] == [
        "InstanceRequested",
        "PortAllocated",
        "InstanceScheduled",
        "VolumeCreated",
        "PortBound",
    ]
    assert set(state.instances) == {"i1"}


def test_usage_samples_are_not_history() -> None:
    sample = compute.UsageSampled(
        host="h1",
        period_seconds=10,
        cpu_time_ns=1,
        memory_kb=1,
        disk_read_bytes=0,
        disk_write_bytes=0,
        net_rx_bytes=0,
        net_tx_bytes=0,
    )
    state = fold(requested("i1"), by_compute(sample))
    assert [e.type for e in state.instances["i1"].history] == ["InstanceRequested"]


def test_tokens_are_found_by_hash_and_can_be_revoked() -> None:
    issued = api.TokenIssued(token_sha256="ab" * 32, role="tenant", expires_at=at(60))
    state = fold(envelope(issued, "tok1", tenant="t1"))
    assert state.token_ids_by_sha256 == {"ab" * 32: "tok1"}
    assert state.tokens["tok1"].tenant_id == "t1"
    state = fold(envelope(api.TokenRevoked(), "tok1", tenant="t1", seconds=1), state=state)
    assert state.tokens["tok1"].revoked


def test_idempotency_keys_are_forgotten_after_a_day() -> None:
    def recorded(key: str, seconds: float) -> Envelope:
        event = api.IdempotentRequestRecorded(
            key=key,
            principal="tenant:t1",
            method_path="POST /v1/instances",
            request_sha256="0" * 64,
            status=202,
            body="{}",
        )
        return envelope(event, f"idempotency-{key}", tenant="t1", seconds=seconds)

    state = fold(recorded("old", 0), recorded("newer", 3600))
    assert set(state.idempotency) == {"idempotency-old", "idempotency-newer"}
    state = fold(recorded("latest", 86400 + 60), state=state)
    assert set(state.idempotency) == {"idempotency-newer", "idempotency-latest"}


def test_a_snapshot_restores_the_same_projection() -> None:
    registered = compute.HostRegistered(rack="r", zone="z", vcpus=4, ram_mb=4096, disk_gb=40)
    state = fold(
        envelope(api.TenantCreated(name="acme"), "t1", tenant="t1"),
        envelope(api.FlavorCreated(flavor=Flavor(name="x1", vcpus=2, ram_mb=512, disk_gb=5)), "x1"),
        envelope(registered, "h1", producer="compute@h1"),
        *LIFE[:5],
        envelope(api.AllocationRatiosSet(cpu=4.0, ram=1.5, disk=1.0), "*"),
    )  # fmt: skip
    restored = restore(snapshot(state))
    assert restored == state
    assert isinstance(restored, GatewayState)
    assert restored.flavors["x1"].vcpus == 2
    assert restored.instances["i1"].status == "STOPPED"
