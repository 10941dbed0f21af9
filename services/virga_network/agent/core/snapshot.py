"""The network agent's snapshot: its state as plain JSON types, and back.

`STATE_VERSION` 2 added public addresses (external networks, routers, floating IPs): a
snapshot of version 1 was written by an agent that did not fold them, so it is not used (the
runtime rebuilds from the log). 3 added the acceptance each floating IP's association came
from and this host's confirmations of them, which a snapshot of version 2 lacks. 4 added
routers' SNAT ports, which a snapshot of version 3 lacks. 5 added live migrations' network
steps (the scheduler's requests, newly read), which a snapshot of version 4 lacks."""

from __future__ import annotations

import dataclasses
from typing import Any

from virga_events.catalog.network import SecurityGroupRule, with_rule_ids
from virga_network.agent.core.model import (
    ConfirmedFloatingIp,
    ExternalNetworkRecord,
    FloatingIpRecord,
    GroupRecord,
    InstanceRecord,
    MigrationRecord,
    NetworkAgentState,
    NetworkRecord,
    PortRecord,
    RouterRecord,
)

STATE_VERSION = 5


def snapshot(state: NetworkAgentState) -> dict[str, Any]:
    """The state as orjson-able values; `restore` is its inverse."""
    return {
        "host": state.host,
        "networks": [dataclasses.asdict(r) for r in state.networks.values()],
        "ports": [dataclasses.asdict(r) for r in state.ports.values()],
        "groups": {
            group_id: {"tenant_id": g.tenant_id, "rules": [dataclasses.asdict(r) for r in g.rules]}
            for group_id, g in state.groups.items()
        },
        "vteps": dict(state.vteps),
        "instances": [dataclasses.asdict(r) for r in state.instances.values()],
        "externals": {k: dataclasses.asdict(r) for k, r in state.externals.items()},
        "routers": {k: dataclasses.asdict(r) for k, r in state.routers.items()},
        "floating_ips": {k: dataclasses.asdict(r) for k, r in state.floating_ips.items()},
        "confirmed": {k: dataclasses.asdict(r) for k, r in state.confirmed.items()},
        "migrations": {k: dataclasses.asdict(r) for k, r in state.migrations.items()},
        "ended_flows": list(state.ended_flows),
    }


def restore(data: dict[str, Any]) -> NetworkAgentState:
    ports = {}
    for raw in data["ports"]:
        fields = dict(raw)
        fields["ips"] = tuple(fields["ips"])
        fields["security_groups"] = tuple(fields["security_groups"])
        ports[fields["port_id"]] = PortRecord(**fields)
    return NetworkAgentState(
        host=data["host"],
        networks={r["network_id"]: NetworkRecord(**r) for r in data["networks"]},
        ports=ports,
        groups={
            # Rules without ids (snapshots before them) are the creation's, in order.
            group_id: GroupRecord(
                raw["tenant_id"],
                with_rule_ids(group_id, tuple(SecurityGroupRule(**rule) for rule in raw["rules"])),
            )
            for group_id, raw in data["groups"].items()
        },
        vteps=dict(data["vteps"]),
        instances={
            raw["instance_id"]: InstanceRecord(**{**raw, "public_keys": tuple(raw["public_keys"])})
            for raw in data.get("instances", [])  # absent in snapshots before the edge
        },
        externals={k: ExternalNetworkRecord(**r) for k, r in data["externals"].items()},
        routers={
            k: RouterRecord(
                **{
                    **r,
                    "networks": dict(r["networks"]),
                    "snat_ports": {n: tuple(p) for n, p in r["snat_ports"].items()},
                }
            )
            for k, r in data["routers"].items()
        },
        floating_ips={k: FloatingIpRecord(**r) for k, r in data["floating_ips"].items()},
        confirmed={k: ConfirmedFloatingIp(**r) for k, r in data["confirmed"].items()},
        migrations={k: MigrationRecord(**r) for k, r in data["migrations"].items()},
        ended_flows=dict.fromkeys(data["ended_flows"]),
    )
