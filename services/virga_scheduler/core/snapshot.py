"""The scheduler's state as plain JSON values for its snapshot topic, and back.

Collections are written sorted, so two states holding the same facts snapshot to equal values
(the rebuild-order tests compare states that way). Tombstones keep their age order, which is
their eviction order. The placement view is not written: it is derived, and rebuilt on demand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from virga_events.catalog.api import InstanceRequested
from virga_runtime.flows import FlowBook, restore_book, snapshot_book
from virga_scheduler.core.model import InstanceRecord, MigrationTarget, SchedulerState
from virga_scheduler.core.placement import AllocationRatios, Claim, Claims, Host, ServerGroup

FORMAT = 1
"""Bumped when the layout changes; an unknown format is refused and the log is read instead."""


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _ratios(ratios: AllocationRatios) -> list[float]:
    return [ratios.cpu, ratios.ram, ratios.disk]


def _parse_ratios(values: list[float]) -> AllocationRatios:
    cpu, ram, disk = values
    return AllocationRatios(cpu=cpu, ram=ram, disk=disk)


def _record(record: InstanceRecord) -> dict[str, Any]:
    return {
        "id": record.instance_id,
        "tenant_id": record.tenant_id,
        "requested": None if record.requested is None else msgspec.to_builtins(record.requested),
        "requested_at": _time(record.requested_at),
        "failed_hosts": list(record.failed_hosts),
        "last_failure": record.last_failure,
        "attempts": record.attempts,
        "status": record.status,
        "deletion_requested": record.deletion_requested,
    }


def _parse_record(data: dict[str, Any]) -> InstanceRecord:
    requested = data["requested"]
    return InstanceRecord(
        instance_id=data["id"],
        tenant_id=data["tenant_id"],
        requested=None if requested is None else msgspec.convert(requested, InstanceRequested),
        requested_at=_parse_time(data["requested_at"]),
        failed_hosts=tuple(data["failed_hosts"]),
        last_failure=data["last_failure"],
        attempts=data["attempts"],
        status=data["status"],
        deletion_requested=data["deletion_requested"],
    )


def snapshot(state: SchedulerState) -> dict[str, Any]:
    """The state as orjson-able values; ``restore`` is its inverse."""
    return {
        "format": FORMAT,
        "ratios": None if state.ratios_set is None else _ratios(state.ratios_set),
        "ratio_overrides": {h: _ratios(r) for h, r in sorted(state.ratio_overrides.items())},
        "hosts": [
            [h.name, h.rack, h.zone, h.vcpus, h.ram_mb, h.disk_gb, sorted(h.traits)]
            for _, h in sorted(state.hosts.items())
        ],
        "disabled": sorted(state.disabled),
        "down": {h: _time(at) for h, at in sorted(state.down.items())},
        "last_seen": {h: _time(at) for h, at in sorted(state.last_seen.items())},
        "groups": [
            [g.id, g.policy, g.scope, sorted(g.members)] for _, g in sorted(state.groups.items())
        ],
        "claims": [
            [c.instance_id, c.host, c.vcpus, c.ram_mb, c.disk_gb] for c in state.claims.all()
        ],
        "instances": [_record(r) for _, r in sorted(state.instances.items())],
        "pending": sorted(state.pending),
        "deleted": list(state.deleted),
        "flows": snapshot_book(state.flows),
        "migration_targets": {h: list(t) for h, t in sorted(state.migration_targets.items())},
        "stopped": sorted(state.stopped),
    }


def restore(data: Any, default_ratios: AllocationRatios | None = None) -> SchedulerState:
    """The state ``snapshot`` wrote; ``default_ratios`` come from today's configuration."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError("not a scheduler snapshot of a known format")
    state = SchedulerState(default_ratios=default_ratios or AllocationRatios())
    state.ratios_set = None if data["ratios"] is None else _parse_ratios(data["ratios"])
    state.ratio_overrides = {h: _parse_ratios(r) for h, r in data["ratio_overrides"].items()}
    for name, rack, zone, vcpus, ram_mb, disk_gb, traits in data["hosts"]:
        state.hosts[name] = Host(name, rack, zone, vcpus, ram_mb, disk_gb, frozenset(traits))
    state.disabled = set(data["disabled"])
    state.down = {h: _parse_time(at) for h, at in data["down"].items()}
    state.last_seen = {h: datetime.fromisoformat(at) for h, at in data["last_seen"].items()}
    for group_id, policy, scope, members in data["groups"]:
        state.groups[group_id] = ServerGroup(group_id, policy, scope, frozenset(members))
    claims = Claims()
    for instance_id, host, vcpus, ram_mb, disk_gb in data["claims"]:
        claims = claims.add(Claim(instance_id, host, vcpus, ram_mb, disk_gb))
    state.claims = claims
    state.instances = {r["id"]: _parse_record(r) for r in data["instances"]}
    state.pending = set(data["pending"])
    state.deleted = dict.fromkeys(data["deleted"])
    # Snapshots written before flows existed hold none.
    state.flows = restore_book(data["flows"]) if "flows" in data else FlowBook()
    # Snapshots written before live migration knew no host that receives them.
    targets = data.get("migration_targets", {})
    # Snapshots written before v4 of HostRegistered hold no Ceph identity: (uri, address).
    state.migration_targets = {h: MigrationTarget(*target) for h, target in targets.items()}
    state.stopped = set(data.get("stopped", ()))
    return state
