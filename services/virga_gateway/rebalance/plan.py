"""The plan, made in the gateway from what it folds: hosts (capacity, claims held, ratios,
up/down, enabled, drains), instances (where they run, their flavor, zone, traits, server
group) and server groups. The gateway holds every input of `virga_rebalance` already, so it
plans where the admin asks, and the scheduler (which re-checks every move against its filters
when it runs it) gets the plan in `RebalanceRequested`.

What the gateway does not see: an in-flight migration's hold on its destination (the gateway
counts a claim where the instance's placement is), and the ratios configured in the
scheduler's environment when no admin set them (`DEFAULT_RATIOS`, the scheduler's defaults,
stand in). Either may make a move fail when it runs (it is reported `unmoved`); neither can
make one overcommit a host, since the scheduler checks capacity with its own ledger.
"""

from __future__ import annotations

from virga_gateway.hosts.model import Host, Ratios
from virga_gateway.state import GatewayState
from virga_rebalance import Group, HostInput, InstanceInput, Options, Plan, plan

DEFAULT_RATIOS = Ratios(cpu=4.0, ram=1.0, disk=1.0)
"""The scheduler's default allocation ratios (`AllocationRatios`), for hosts without an
admin's ratios and no default set by an admin."""


def current_plan(state: GatewayState, options: Options | None = None) -> Plan:
    """The plan for the cluster as the projection has it now."""
    hosts = [_host(state, h) for h in sorted(state.hosts.values(), key=lambda h: h.name)]
    known = {h.name for h in hosts}
    instances = [
        InstanceInput(
            id=instance.id,
            host=host,
            vcpus=instance.flavor.vcpus,
            ram_mb=instance.flavor.ram_mb,
            disk_gb=instance.flavor.disk_gb,
            zone=instance.availability_zone,
            group=instance.server_group,
            traits=frozenset(instance.required_traits),
            movable=instance.status == "RUNNING" and not instance.migration_pending,
        )
        for instance_id, claims in sorted(state.claims.items())
        if (instance := state.instances.get(instance_id)) is not None
        and instance.flavor is not None
        and len(claims) == 1
        and (host := next(iter(claims))) in known
    ]
    groups = [Group(g.id, g.policy, g.scope) for g in state.server_groups.values()]
    return plan(hosts, instances, sorted(groups, key=lambda g: g.id), options or Options())


def _host(state: GatewayState, host: Host) -> HostInput:
    ratios = state.allocation_ratios.get(host.name) or state.allocation_ratios.get(
        "*", DEFAULT_RATIOS
    )
    draining = host.drain is not None and host.drain.status == "DRAINING"
    return HostInput(
        name=host.name,
        rack=host.rack,
        zone=host.zone,
        vcpus=host.capacity.vcpus * ratios.cpu,
        ram_mb=host.capacity.ram_mb * ratios.ram,
        disk_gb=host.capacity.disk_gb * ratios.disk,
        used_vcpus=host.allocated.vcpus,
        used_ram_mb=host.allocated.ram_mb,
        used_disk_gb=host.allocated.disk_gb,
        traits=frozenset(host.traits),
        schedulable=host.registered and host.state == "up" and host.enabled and not draining,
        receives=host.receives_migrations,
    )
