"""The compute agent's state as plain JSON values for its snapshots, and back."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from virga_compute.core.model import ComputeState, ConsoleTicket, InstanceRecord, PortBinding
from virga_events.catalog.common import Flavor


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _record(r: InstanceRecord) -> dict[str, Any]:
    return {
        "instance_id": r.instance_id,
        "tenant_id": r.tenant_id,
        "name": r.name,
        "vcpus": r.vcpus,
        "ram_mb": r.ram_mb,
        "attempt": r.attempt,
        "scheduled_event_id": r.scheduled_event_id,
        "image": r.image,
        "network": r.network,
        "status": r.status,
        "domain_lost": r.domain_lost,
        "deletion_event_id": r.deletion_event_id,
        "usage_since": _time(r.usage_since),
        "attachments": r.attachments,
        "attaching": r.attaching,
        "grown": r.grown,
        "restart_policy": r.restart_policy,
        "actions": r.actions,
        "restarting": r.restarting,
        "changed_at": _time(r.changed_at),
        "hostname": r.hostname,
        "key_name": r.key_name,
        "public_keys": list(r.public_keys),
        "user_data": r.user_data,
        "config_drive": r.config_drive,
        "migration_flow": r.migration_flow,
        "migration_event_id": r.migration_event_id,
        "resize_flow": r.resize_flow,
        "resize_ran": r.resize_ran,
        "resize_flavor": None if r.resize_flavor is None else asdict(r.resize_flavor),
    }


def snapshot(state: ComputeState) -> dict[str, Any]:
    """The state as orjson-able values; `restore` is its inverse."""
    return {
        "host": state.host,
        "instances": [_record(r) for r in state.instances.values()],
        "pending_deletions": [[k, v] for k, v in state.pending_deletions.items()],
        "pending_actions": {
            instance_id: [[event_id, action, _time(at)] for event_id, (action, at) in w.items()]
            for instance_id, w in state.pending_actions.items()
        },
        "deleted": list(state.deleted),
        "usage_sampled_at": _time(state.usage_sampled_at),
        "heartbeat_at": _time(state.heartbeat_at),
        "boot_volumes": state.boot_volumes,
        "volume_failures": state.volume_failures,
        "bound_ports": {
            k: [b.mac, b.tap, b.event_id, b.network_id, list(b.ips)]
            for k, b in state.bound_ports.items()
        },
        "networks": {k: list(v) for k, v in state.networks.items()},
        "port_failures": state.port_failures,
        "console_tickets": {
            k: [t.instance_id, t.tenant_id, t.expires_at.isoformat(), t.session_id]
            for k, t in state.console_tickets.items()
        },
        "incoming": {flow_id: _record(r) for flow_id, r in state.incoming.items()},
        "migrated": {flow_id: list(moved) for flow_id, moved in state.migrated.items()},
        "ended": {k: _time(v) for k, v in state.ended.items()},
        "rebuilding": {k: list(v) for k, v in state.rebuilding.items()},
        "evacuated": state.evacuated,
    }


def restore(data: dict[str, Any]) -> ComputeState:
    records = {raw["instance_id"]: _parse_record(raw) for raw in data["instances"]}
    return ComputeState(
        host=data["host"],
        instances=records,
        pending_deletions={k: v for k, v in data["pending_deletions"]},
        pending_actions={
            instance_id: {
                event_id: (action, datetime.fromisoformat(at)) for event_id, action, at in w
            }
            for instance_id, w in data.get("pending_actions", {}).items()
        },
        deleted=dict.fromkeys(data["deleted"]),
        usage_sampled_at=_parse_time(data["usage_sampled_at"]),
        heartbeat_at=_parse_time(data["heartbeat_at"]),
        # Snapshots written before volumes and ports joined have none of these.
        boot_volumes=dict(data.get("boot_volumes", {})),
        volume_failures=dict(data.get("volume_failures", {})),
        bound_ports={k: _binding(v) for k, v in data.get("bound_ports", {}).items()},
        networks={k: (v[0], v[1]) for k, v in data.get("networks", {}).items()},
        port_failures=dict(data.get("port_failures", {})),
        # Snapshots written before consoles have no tickets.
        console_tickets={
            k: ConsoleTicket(v[0], v[1], datetime.fromisoformat(v[2]), v[3])
            for k, v in data.get("console_tickets", {}).items()
        },
        # Snapshots written before live migration have no migrations.
        incoming={k: _parse_record(v) for k, v in data.get("incoming", {}).items()},
        migrated={k: (v[0], v[1], v[2]) for k, v in data.get("migrated", {}).items()},
        ended={k: _parse_time(v) for k, v in data.get("ended", {}).items()},
        # Snapshots written before evacuation have none.
        rebuilding={k: (v[0], v[1]) for k, v in data.get("rebuilding", {}).items()},
        evacuated=dict(data.get("evacuated", {})),
    )


def _parse_record(raw: dict[str, Any]) -> InstanceRecord:
    fields = dict(raw)
    fields["usage_since"] = _parse_time(fields["usage_since"])
    fields["changed_at"] = _parse_time(fields.get("changed_at"))
    fields.setdefault("attachments", {})
    fields.setdefault("attaching", {})
    fields.setdefault("grown", {})
    # Snapshots written before config drives have none of these: the defaults hold.
    fields["public_keys"] = tuple(fields.get("public_keys", ()))
    flavor = fields.get("resize_flavor")
    fields["resize_flavor"] = None if flavor is None else Flavor(**flavor)
    return InstanceRecord(**fields)


def _binding(value: list[Any]) -> PortBinding:
    # Snapshots written before guests were told their address keep [mac, tap, event_id].
    mac, tap, event_id, *rest = value
    network_id = rest[0] if rest else ""
    ips = tuple(rest[1]) if len(rest) > 1 else ()
    return PortBinding(mac, tap, event_id, network_id, ips)
