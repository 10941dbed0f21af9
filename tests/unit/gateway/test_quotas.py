"""Quotas, pure: what counts, when it is released, limits, and the decision to refuse."""

from __future__ import annotations

import itertools
import random

from tests.unit.gateway.events import SMALL, envelope, fold, requested

from virga_audit import quotas as audit
from virga_events import Envelope
from virga_events.catalog import api, compute, network, storage
from virga_events.catalog.quotas import (
    DEFAULT_LIMITS,
    QUOTA_DEFAULTS_ID,
    QuotaDefaultsSet,
    TenantQuotaSet,
)
from virga_gateway.preview import preview
from virga_gateway.quotas.enforce import limited, over_quota, quota_increase
from virga_gateway.quotas.model import limits, usage
from virga_gateway.state import GatewayState, restore, snapshot
from virga_runtime.service import Emit


def deleted(instance: str, seconds: float = 5) -> Envelope:
    event = compute.InstanceDeleted(host="h1")
    return envelope(event, instance, producer="compute@h1", seconds=seconds)


def test_the_defaults_are_novas_until_an_admin_sets_others() -> None:
    state = GatewayState()
    assert limits(state, "t1")["instances"] == 10
    assert limits(state, "t1")["vcpus"] == 20
    assert limits(state, "t1")["ram_mb"] == 51_200
    state = fold(
        envelope(QuotaDefaultsSet(limits={"instances": 3}), QUOTA_DEFAULTS_ID), state=state
    )
    assert limits(state, "t1")["instances"] == 3
    assert limits(state, "t1")["vcpus"] == 20  # partial: the others unchanged


def test_a_tenants_own_limits_override_the_defaults_and_can_be_cleared() -> None:
    state = fold(
        envelope(TenantQuotaSet(limits={"instances": 50, "vcpus": -1}), "t1"),
        envelope(QuotaDefaultsSet(limits={"instances": 5}), QUOTA_DEFAULTS_ID),
    )
    assert limits(state, "t1")["instances"] == 50
    assert limits(state, "t1")["vcpus"] == -1
    assert limits(state, "t2")["instances"] == 5
    state = fold(envelope(TenantQuotaSet(cleared=("instances",)), "t1"), state=state)
    assert limits(state, "t1")["instances"] == 5
    assert limits(state, "t1")["vcpus"] == -1


def test_an_instance_counts_from_its_request_until_it_is_deleted() -> None:
    state = fold(requested("i1"), requested("i2"))
    assert usage(state, "t1")["instances"] == 2
    assert usage(state, "t1")["vcpus"] == 2 * SMALL.vcpus
    assert usage(state, "t1")["ram_mb"] == 2 * SMALL.ram_mb
    state = fold(envelope(api.InstanceDeletionRequested(), "i1", tenant="t1"), state=state)
    assert usage(state, "t1")["instances"] == 2  # deleting still counts
    state = fold(deleted("i1"), state=state)
    assert usage(state, "t1")["instances"] == 1
    assert usage(state, "t2")["instances"] == 0


def test_usage_is_the_same_whatever_order_the_topics_are_folded_in() -> None:
    facts = [requested("i1"), deleted("i1"), requested("i2")]
    for order in itertools.permutations(facts):
        assert usage(fold(*order), "t1")["instances"] == 1


def test_volumes_snapshots_and_failures() -> None:
    state = fold(
        envelope(storage.VolumeRequested(name="v", size_gb=5), "v1", tenant="t1"),
        envelope(storage.VolumeRequested(name="w", size_gb=7), "v2", tenant="t1"),
        envelope(storage.VolumeExtendRequested(size_gb=9), "v1", tenant="t1"),
        envelope(storage.VolumeSnapshotRequested(snapshot_id="s1", name="s"), "v1", tenant="t1"),
    )
    assert usage(state, "t1")["volumes"] == 2
    assert usage(state, "t1")["volume_gb"] == 16
    assert usage(state, "t1")["snapshots"] == 1
    failed = storage.VolumeFailed(operation="create", reason="no space")
    state = fold(envelope(failed, "v2", producer="storage"), state=state)
    assert usage(state, "t1")["volumes"] == 1
    assert usage(state, "t1")["volume_gb"] == 9
    state = fold(envelope(storage.VolumeDeleted(), "v1", producer="storage"), state=state)
    assert usage(state, "t1") == dict.fromkeys(DEFAULT_LIMITS, 0)


def test_an_instances_boot_volume_and_port_count_only_as_the_instance() -> None:
    boot = storage.VolumeCreated(name="boot", size_gb=20, instance_id="i1")
    port = network.PortAllocated(
        network_id="n1",
        mac="52:54:00:00:00:01",
        ips=("10.0.0.2",),
        instance_id="i1",
        security_groups=(),
    )
    state = fold(
        requested("i1"),
        envelope(boot, "vol-i1", tenant="t1", producer="storage"),
        envelope(port, "port-i1", tenant="t1", producer="network"),
    )
    used = usage(state, "t1")
    assert (used["instances"], used["volumes"], used["volume_gb"], used["ports"]) == (1, 0, 0, 0)


def test_a_restored_snapshot_recounts_usage() -> None:
    state = fold(requested("i1"), requested("i2"), deleted("i2"))
    again = restore(snapshot(state))
    assert again.quota_usage == state.quota_usage
    assert again.quota_counted == state.quota_counted


def test_a_request_over_its_limit_is_refused_with_the_limit_and_the_usage() -> None:
    state = fold(
        envelope(TenantQuotaSet(limits={"instances": 2}), "t1"),
        requested("i1"),
        requested("i2"),
    )
    emit = Emit(api.InstanceRequested(name="i3", flavor=SMALL), "i3", "t1")
    after = preview(state, [emit], requested("i3").occurred_at, "c")
    grown = quota_increase(state, after, [emit])
    assert grown == {"t1": {"instances": 1, "vcpus": 1, "ram_mb": 2048}}
    problem = over_quota(state, grown)
    assert problem is not None
    assert problem.status == 403
    assert [e.field for e in problem.errors] == ["instances"]
    assert "limit 2, in use 2, requested 1" in problem.detail
    assert state.quota_usage["t1"]["instances"] == 2  # the preview left the projection alone


def test_a_request_that_takes_nothing_is_never_over_quota() -> None:
    state = fold(
        requested("i1"), requested("i2"), envelope(TenantQuotaSet(limits={"instances": 1}), "t1")
    )
    emit = Emit(api.InstanceDeletionRequested(), "i1", "t1")
    after = preview(state, [emit], requested("x").occurred_at, "c")
    assert quota_increase(state, after, [emit]) == {}


def test_unlimited_is_minus_one() -> None:
    state = fold(envelope(TenantQuotaSet(limits={"instances": -1}), "t1"))
    assert over_quota(state, {"t1": {"instances": 10_000}}) is None
    assert over_quota(state, {"t1": {"vcpus": 21}}) is not None


def test_the_audit_recounts_what_the_gateway_counts() -> None:
    rng = random.Random(7)
    facts: list[Envelope] = []
    live: list[str] = []
    for n in range(200):
        if live and rng.random() < 0.4:
            facts.append(deleted(live.pop(rng.randrange(len(live))), seconds=n))
        else:
            instance = f"i{n}"
            facts.append(requested(instance, tenant=rng.choice(["t1", "t2"]), seconds=n))
            live.append(instance)
    state = fold(*facts)
    model = audit.fold_all(facts)
    for tenant in ("t1", "t2"):
        assert model.usage(tenant) == usage(state, tenant)


def test_the_audit_finds_a_request_accepted_over_its_limit() -> None:
    facts = [
        envelope(TenantQuotaSet(limits={"instances": 1}), "t1"),
        requested("i1", seconds=1),
        deleted("i1", seconds=2),
        requested("i2", seconds=3),
    ]
    assert audit.fold_all(facts).violations == []
    over = audit.fold_all([*facts, requested("i3", seconds=4)]).violations
    assert [(v.tenant_id, v.resource, v.limit, v.usage) for v in over] == [
        ("t1", "instances", 1, 2)
    ]


def test_only_resources_a_limit_bounds_are_checked_and_queued() -> None:
    state = fold(envelope(TenantQuotaSet(limits={"instances": -1, "vcpus": 4}), "t1"))
    grown = {"t1": {"instances": 1, "vcpus": 1, "ram_mb": 256}, "t2": {"instances": 1}}
    assert limited(state, grown) == {"t1": {"vcpus": 1, "ram_mb": 256}, "t2": {"instances": 1}}
    lifted = fold(envelope(TenantQuotaSet(limits=dict.fromkeys(DEFAULT_LIMITS, -1)), "t1"))
    assert limited(lifted, {"t1": {"instances": 1, "vcpus": 1}}) == {}
