"""The quota invariant of `virga audit check`: usage recomputed from the log, in event time,
and every accepted request checked against the limits in force when it was accepted.

The auditor's own reading of the contract (`virga_events.catalog.quotas` and the facts of
each resource), not the gateway's projection: a resource counts from its request until its
owner reports it deleted or failed to create it; an instance's boot volume and port count only
as the instance; a public image counts against no one. A request is over quota when a resource
it takes grows past a limit other than -1; a request that takes nothing is never over quota,
even where an admin has since lowered a limit under the usage. Events are folded by
``occurred_at``, so the check assumes the producers' clocks agree to within the time between
a deletion and a request that relies on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from virga_events import Envelope
from virga_events.catalog import api, compute, l3, network, quotas, storage

Usage = dict[str, int]


@dataclass(frozen=True, slots=True)
class OverQuota:
    """An accepted request that took a tenant past one of its limits."""

    tenant_id: str
    resource: str
    limit: int
    usage: int
    """The usage once the request was counted."""
    event_id: str

    def __str__(self) -> str:
        return (
            f"over-quota {self.tenant_id}: {self.resource} at {self.usage} of {self.limit}"
            f" after event {self.event_id}"
        )


@dataclass(slots=True)
class QuotaModel:
    """Limits and what each live resource takes, folded from every topic."""

    defaults: Usage = field(default_factory=lambda: dict(quotas.DEFAULT_LIMITS))
    overrides: dict[str, Usage] = field(default_factory=dict)
    taken: dict[str, tuple[str, Usage]] = field(default_factory=dict)
    """``kind/id`` (a snapshot: ``snapshot/<volume>/<id>``) -> (tenant, what it takes)."""
    totals: dict[str, Usage] = field(default_factory=dict)
    """Tenant -> the sum of what its resources take."""
    snapshot_requests: dict[str, str] = field(default_factory=dict)
    """Event id of a snapshot request -> its key in `taken`, to release it if it fails."""
    violations: list[OverQuota] = field(default_factory=list)

    def usage(self, tenant_id: str) -> Usage:
        """What the tenant's live resources take, every resource named."""
        return {**dict.fromkeys(quotas.QUOTA_RESOURCES, 0), **self.totals.get(tenant_id, {})}

    def put(self, key: str, tenant_id: str, usage: Usage) -> Usage:
        """Record what `key` takes now; returns what it took before."""
        _, before = self.taken.pop(key, (tenant_id, {}))
        self._add(tenant_id, before, -1)
        if usage:
            self.taken[key] = (tenant_id, usage)
            self._add(tenant_id, usage, 1)
        return before

    def drop(self, key: str) -> None:
        found = self.taken.get(key)
        if found is not None:
            self.put(key, found[0], {})

    def _add(self, tenant_id: str, usage: Usage, sign: int) -> None:
        total = self.totals.setdefault(tenant_id, {})
        for name, amount in usage.items():
            total[name] = total.get(name, 0) + sign * amount

    def limit(self, tenant_id: str, resource: str) -> int:
        own = self.overrides.get(tenant_id, {})
        return own.get(resource, self.defaults[resource])


def fold(model: QuotaModel, envelope: Envelope) -> QuotaModel:
    """Fold one fact, checking it against the limits if it is a request that takes quota."""
    event, key, tenant = envelope.payload, envelope.aggregate_id, envelope.tenant_id or ""
    match event:
        case quotas.QuotaDefaultsSet():
            model.defaults.update(event.limits)
        case quotas.TenantQuotaSet():
            own = model.overrides.setdefault(key, {})
            own.update(event.limits)
            for name in event.cleared:
                own.pop(name, None)
        case api.TenantDeleted():
            model.overrides.pop(key, None)  # a deleted tenant's overrides are dropped
        case api.InstanceRequested():
            flavor = event.flavor
            usage = {"instances": 1, "vcpus": flavor.vcpus, "ram_mb": flavor.ram_mb}
            _take(model, envelope, f"instance/{key}", tenant, usage)
        case storage.VolumeRequested():
            _take(
                model, envelope, f"volume/{key}", tenant, {"volumes": 1, "volume_gb": event.size_gb}
            )
        case storage.VolumeExtendRequested():
            owner, usage = model.taken.get(f"volume/{key}", (tenant, {}))
            if usage:
                grown = {**usage, "volume_gb": max(usage["volume_gb"], event.size_gb)}
                _take(model, envelope, f"volume/{key}", owner, grown)
        case storage.VolumeSnapshotRequested():
            snapshot_key = f"snapshot/{key}/{event.snapshot_id}"
            model.snapshot_requests[envelope.event_id] = snapshot_key
            _take(model, envelope, snapshot_key, tenant, {"snapshots": 1})
        case storage.ImageImportRequested() if tenant:
            _take(model, envelope, f"image/{key}", tenant, {"images": 1})
        case network.NetworkRequested():
            _take(model, envelope, f"network/{key}", tenant, {"networks": 1})
        case network.PortRequested():
            _take(model, envelope, f"port/{key}", tenant, {"ports": 1})
        case network.SecurityGroupCreated():
            _take(model, envelope, f"security_group/{key}", tenant, {"security_groups": 1})
        case api.KeypairImported():
            _take(model, envelope, f"keypair/{key}", tenant, {"keypairs": 1})
        case l3.FloatingIpRequested():
            _take(model, envelope, f"floating_ip/{key}", tenant, {"floating_ips": 1})
        case l3.RouterRequested():
            _take(model, envelope, f"router/{key}", tenant, {"routers": 1})
        case _:
            _release(model, envelope)
    return model


def _release(model: QuotaModel, envelope: Envelope) -> None:
    event, key = envelope.payload, envelope.aggregate_id
    match event:
        case compute.InstanceDeleted():
            model.drop(f"instance/{key}")
        case storage.VolumeDeleted():  # with its snapshots
            model.drop(f"volume/{key}")
            for snapshot_key in [k for k in model.taken if k.startswith(f"snapshot/{key}/")]:
                model.drop(snapshot_key)
        case storage.VolumeFailed() if event.operation == "create":
            model.drop(f"volume/{key}")
        case storage.VolumeFailed() if event.operation == "snapshot":
            model.drop(model.snapshot_requests.get(envelope.causation_id or "", ""))
        case storage.VolumeSnapshotDeleted():
            model.drop(f"snapshot/{key}/{event.snapshot_id}")
        case storage.ImageDeleted() | storage.ImageImportFailed():
            model.drop(f"image/{key}")
        case network.NetworkDeleted() | network.NetworkCreationFailed():
            model.drop(f"network/{key}")
        case network.PortDeleted() | network.PortAllocationFailed():
            model.drop(f"port/{key}")
        case network.SecurityGroupDeleted():
            model.drop(f"security_group/{key}")
        case api.KeypairDeleted():
            model.drop(f"keypair/{key}")
        case l3.FloatingIpReleased() | l3.FloatingIpAllocationFailed():
            model.drop(f"floating_ip/{key}")
        case l3.RouterDeleted() | l3.RouterCreationFailed():
            model.drop(f"router/{key}")
        case _:
            pass


def _take(model: QuotaModel, envelope: Envelope, key: str, tenant: str, usage: Usage) -> None:
    before = model.put(key, tenant, usage)
    grown = [name for name, amount in usage.items() if amount > before.get(name, 0)]
    if not grown:
        return
    total = model.usage(tenant)
    for name in grown:
        limit = model.limit(tenant, name)
        if limit != quotas.UNLIMITED and total[name] > limit:
            model.violations.append(OverQuota(tenant, name, limit, total[name], envelope.event_id))


def fold_all(envelopes: Iterable[Envelope]) -> QuotaModel:
    """Every fact folded in event time (then by producer and chain seq), as `invariants`."""
    model = QuotaModel()
    for envelope in sorted(envelopes, key=lambda e: (e.occurred_at, e.producer, e.seq)):
        fold(model, envelope)
    return model
