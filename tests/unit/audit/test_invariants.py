"""`virga audit check` on crafted logs: each kind of violation is found, a clean log has none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from virga_audit.invariants import check, fold_all
from virga_events import Envelope, Event, new_event
from virga_events.catalog import Flavor, api, compute, l3, network, scheduler, storage
from virga_scheduler.config import SchedulerConfig

T0 = datetime(2026, 5, 1, tzinfo=UTC)
NOW = T0 + timedelta(hours=2)
STUCK_AFTER = timedelta(minutes=15)
BIG = Flavor(name="m1.big", vcpus=4, ram_mb=4096, disk_gb=40)


def fact(payload: Event, aggregate: str, minutes: float, producer: str = "test") -> Envelope:
    return new_event(
        payload,
        aggregate_id=aggregate,
        tenant_id="t1",
        producer=producer,
        occurred_at=T0 + timedelta(minutes=minutes),
    )


def port(port_id: str, instance: str | None, mac: str, ip: str, minutes: float) -> Envelope:
    allocated = network.PortAllocated(
        network_id="n1", mac=mac, ips=(ip,), security_groups=(), instance_id=instance
    )
    return fact(allocated, port_id, minutes)


def booted(instance: str, host: str = "h1", minutes: float = 0) -> list[Envelope]:
    """An instance from an image on network n1, placed, with its volume and port, running."""
    requested = api.InstanceRequested(name=instance, flavor=BIG, image="img", network="n1")
    placed = scheduler.InstanceScheduled(
        host=host, rack="r", zone="z", attempt=1, name=instance, flavor=BIG
    )
    boot = storage.VolumeCreated(name=f"{instance}-boot", size_gb=40, instance_id=instance)
    mac, ip = f"fa:16:3e:00:00:{len(instance):02x}", f"10.0.0.{len(instance) + 10}"
    return [
        fact(requested, instance, minutes),
        fact(placed, instance, minutes + 1),
        fact(boot, f"v-{instance}", minutes + 2),
        port(f"p-{instance}", instance, mac, ip, minutes + 2),
        fact(compute.InstanceStarted(host=host), instance, minutes + 3),
    ]


def deleted(instance: str, host: str = "h1", minutes: float = 10) -> list[Envelope]:
    return [
        fact(api.InstanceDeletionRequested(), instance, minutes),
        fact(compute.InstanceDeleted(host=host), instance, minutes + 1),
        fact(scheduler.ClaimReleased(host=host, reason="instance deleted"), instance, minutes + 1),
        fact(storage.VolumeDeleted(), f"v-{instance}", minutes + 2),
        fact(network.PortDeleted(), f"p-{instance}", minutes + 2),
    ]


HOST = fact(
    compute.HostRegistered(rack="r", zone="z", vcpus=2, ram_mb=8192, disk_gb=100), "h1", -10
)
CLEAN = [HOST, *booted("a"), *booted("bb"), *deleted("bb"), *booted("ccc", minutes=30)]


def violations(events: list[Envelope]) -> list[str]:
    return [str(v) for v in check(fold_all(events), NOW, STUCK_AFTER)]


def test_a_clean_log_breaks_nothing() -> None:
    # 3 x 4 vCPUs claimed at most on 2 physical ones: within the default ratio of 4.
    assert violations(CLEAN) == []


def test_a_host_beyond_its_allocation_ratio() -> None:
    ratios = fact(api.AllocationRatiosSet(cpu=2.0, ram=1.0, disk=1.0), "h1", -5)
    found = violations([*CLEAN, ratios])
    # 2 vCPUs x 2 = 4: the second instance placed makes 8 claimed.
    assert found
    assert all(v.startswith("overcommitted h1: vcpus 8 claimed > 2 x 2") for v in found)


# 3 x 4 vCPUs on 2 physical ones at once (RAM and disk to spare): beyond the ratio 4, within 8.
BUSY = [
    *CLEAN,
    fact(
        compute.HostRegistered(rack="r", zone="z", vcpus=2, ram_mb=65536, disk_gb=1000), "h2", -10
    ),
    *booted("dddd", "h2", 40),
    *booted("eeeee", "h2", 41),
    *booted("ffffff", "h2", 42),
]


def test_hosts_without_ratios_of_their_own_have_the_scheduler_s_configured_ones() -> None:
    # The scheduler of this cloud runs with VIRGA_CPU_ALLOCATION_RATIO=8 and placed them.
    configured = SchedulerConfig.from_env({"VIRGA_CPU_ALLOCATION_RATIO": "8"})
    assert check(fold_all(BUSY, configured), NOW, STUCK_AFTER) == []
    # With the scheduler's defaults (4) the same log is overcommitted.
    assert violations(BUSY)
    assert all(v.startswith("overcommitted h2: vcpus 12 claimed > 2 x 4") for v in violations(BUSY))


def test_the_default_an_admin_set_wins_over_the_configured_one() -> None:
    configured = SchedulerConfig.from_env({"VIRGA_CPU_ALLOCATION_RATIO": "8"})
    tighter = fact(api.AllocationRatiosSet(cpu=4.0, ram=1.0, disk=1.0), "*", -5)
    found = [str(v) for v in check(fold_all([*BUSY, tighter], configured), NOW, STUCK_AFTER)]
    assert found
    assert all(v.startswith("overcommitted h2: vcpus 12 claimed > 2 x 4") for v in found)
    looser = fact(api.AllocationRatiosSet(cpu=8.0, ram=1.0, disk=1.0), "*", -5)
    assert violations([*BUSY, looser]) == []


@pytest.mark.parametrize(
    ("clash", "word"),
    [
        (port("p-x", None, "fa:16:3e:00:00:01", "10.0.0.99", 5), "MAC fa:16:3e:00:00:01"),
        (port("p-x", None, "fa:16:3e:00:00:99", "10.0.0.11", 5), "IP 10.0.0.11"),
    ],
)
def test_an_address_used_twice_in_a_network(clash: Envelope, word: str) -> None:
    assert violations([*CLEAN, clash]) == [
        f"address-reused p-x: {word} is also port p-a's in network n1"
    ]


def test_a_freed_address_may_be_used_again() -> None:
    again = port("p-x", None, "fa:16:3e:00:00:02", "10.0.0.12", 40)  # p-bb's, deleted at 12
    assert violations([*CLEAN, again]) == []


def test_a_running_instance_without_its_volume_or_port() -> None:
    events = [e for e in CLEAN if e.aggregate_id not in ("v-a", "p-ccc")]
    assert violations(events) == [
        "missing-volume a: RUNNING without a boot volume (image img)",
        "missing-port ccc: RUNNING without a port on network n1",
    ]


def test_a_volume_or_port_left_behind_by_a_deleted_instance() -> None:
    gone = (storage.VolumeDeleted, network.PortDeleted)
    events = [
        e for e in CLEAN if not (e.aggregate_id in ("v-bb", "p-bb") and isinstance(e.payload, gone))
    ]
    found = violations(events)
    assert [v.split(":")[0] for v in found] == ["orphaned v-bb", "orphaned p-bb"]
    assert all("of bb, deleted at" in v for v in found)


def test_a_kept_boot_volume_is_not_an_orphan() -> None:
    # delete_on_termination=False: the boot volume outlives its instance on purpose.
    keep = api.InstanceRequested(
        name="bb", flavor=BIG, image="img", network="n1", delete_on_termination=False
    )
    events = [
        fact(keep, "bb", 0)
        if e.aggregate_id == "bb" and isinstance(e.payload, api.InstanceRequested)
        else e
        for e in CLEAN
    ]
    kept = [
        e
        for e in events
        if not (e.aggregate_id == "v-bb" and isinstance(e.payload, storage.VolumeDeleted))
    ]
    assert violations(kept) == []


def test_an_instance_stuck_building_or_deleting_without_a_reason() -> None:
    building = fact(api.InstanceRequested(name="d", flavor=BIG), "d", 50)
    deleting = fact(api.InstanceDeletionRequested(), "ccc", 60)
    found = violations([*CLEAN, building, deleting])
    assert [v.split(":")[0] for v in found] == ["stuck ccc", "stuck d"]
    assert "DELETING since 2026-05-01T01:00:00+00:00" in found[0]
    # Explained by a failure with a reason, or too recent: not stuck.
    failed = fact(compute.InstanceFailed(host="h1", phase="spawn", reason="no space"), "d", 55)
    assert violations([*CLEAN, building, failed]) == []
    assert check(fold_all([*CLEAN, building]), T0 + timedelta(minutes=60), STUCK_AFTER) == []


def test_a_public_ip_held_twice_is_found_and_a_released_one_may_be_taken_again() -> None:
    fip = l3.FloatingIpAllocated(external_network_id="ext", ip="203.0.113.10")
    router = l3.RouterCreated(name="r", external_network_id="ext", external_ip="203.0.113.10")
    released = l3.FloatingIpReleased(external_network_id="ext", ip="203.0.113.10")
    reused = [fact(fip, "fip-1", 1), fact(released, "fip-1", 2), fact(router, "r-1", 3)]
    assert violations([*CLEAN, *reused]) == []
    other_network = l3.FloatingIpAllocated(external_network_id="ext-2", ip="203.0.113.10")
    assert violations([*CLEAN, fact(fip, "fip-1", 1), fact(other_network, "fip-2", 2)]) == []
    clash = [fact(fip, "fip-1", 1), fact(router, "r-1", 3)]
    assert violations([*CLEAN, *clash]) == [
        "address-reused r-1: public IP 203.0.113.10 is also fip-1's in external network ext"
    ]


def test_a_routers_snat_port_holds_its_address_as_a_port_does() -> None:
    def added(ip: str) -> l3.RouterInterfaceAdded:
        return l3.RouterInterfaceAdded(
            network_id="n1", gateway_ip="10.0.0.1", snat_mac="fa:16:3e:00:00:77", snat_ip=ip
        )

    assert violations([*CLEAN, fact(added("10.0.0.11"), "r-1", 50)]) == [
        "address-reused r-1/snat/n1: IP 10.0.0.11 is also port p-a's in network n1"
    ]
    snat = fact(added("10.0.0.50"), "r-1", 50)
    taken = port("p-x", None, "fa:16:3e:00:00:99", "10.0.0.50", 51)
    assert violations([*CLEAN, snat, taken]) == [
        "address-reused p-x: IP 10.0.0.50 is also port r-1/snat/n1's in network n1"
    ]
    removed = fact(l3.RouterInterfaceRemoved(network_id="n1"), "r-1", 51)
    assert (
        violations([*CLEAN, snat, removed, port("p-x", None, "fa:16:3e:00:00:99", "10.0.0.50", 52)])
        == []
    )
    gone = fact(l3.RouterDeleted(external_network_id="ext"), "r-1", 51)
    assert (
        violations([*CLEAN, snat, gone, port("p-x", None, "fa:16:3e:00:00:99", "10.0.0.50", 52)])
        == []
    )
