"""The scheduler's state: fleet, claims, server groups and instances, as the log tells them.

Every input is recorded as a fact on its own (a host's inventory, an admin's flag, a failed
spawn), never derived from another topic's events, because a rebuild reads partitions in an
order of its own. Claims, placement outcomes and host up/down come only from the scheduler's
own events: a rebuild folds those after all the inputs they answered, so they must not depend
on being folded in the live order.

The ``PlacementView`` the decisions read is derived from these facts. Status changes and claims
update it in place of rebuilding it; inventory changes (a host registered, new ratios) drop it
and the next decision builds it once, so a rebuild folding 10,000 registrations pays one build.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal, NamedTuple

from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.scheduler import InstanceScheduled
from virga_runtime.flows import FlowBook
from virga_scheduler.core.placement import (
    AllocationRatios,
    Claim,
    Claims,
    Host,
    PlacementRequest,
    PlacementView,
    ServerGroup,
)

InstanceStatus = Literal["pending", "scheduled", "failed"]

TOMBSTONE_LIMIT = 100_000
"""Deleted instance ids remembered, so a late event about one does not bring it back."""

DEFAULT_RATIOS_KEY = "*"
"""AllocationRatiosSet aggregate that sets every host's ratios rather than one host's."""


@dataclass(slots=True)
class InstanceRecord:
    """What the scheduler knows of one instance that is not deleted yet."""

    instance_id: str
    """The instance (the aggregate id of its events)."""
    tenant_id: str | None = None
    """Its owner, from the request."""
    requested: InstanceRequested | None = None
    """The request, kept for reschedules; None until it is folded (a rebuild may fold a
    failure from the compute topic first)."""
    requested_at: datetime | None = None
    """Event time of the request; bounds how long it waits for its server group."""
    failed_hosts: tuple[str, ...] = ()
    """Hosts where a spawn of it failed, in order; it never goes back to one."""
    last_failure: str = ""
    """Reason of the last failed spawn."""
    attempts: int = 0
    """Highest ``InstanceScheduled.attempt`` so far (placements made)."""
    status: InstanceStatus = "pending"
    """``pending`` until the scheduler placed it or gave up on it."""
    deletion_requested: bool = False
    """The tenant asked to delete it."""

    def placement_request(self) -> PlacementRequest:
        """The request as the placement core sees it, excluding every host that failed it."""
        asked = self.requested
        if asked is None:
            raise ValueError(f"instance {self.instance_id} has no request")
        return PlacementRequest(
            instance_id=self.instance_id,
            tenant_id=self.tenant_id or "",
            vcpus=asked.flavor.vcpus,
            ram_mb=asked.flavor.ram_mb,
            disk_gb=asked.flavor.disk_gb,
            availability_zone=asked.availability_zone,
            server_group_id=asked.server_group,
            required_traits=frozenset(asked.required_traits),
            excluded_hosts=frozenset(self.failed_hosts),
        )

    def placed_on(self, host: Host, attempt: int) -> InstanceScheduled:
        """Its placement on ``host``: what that host's agent builds (or adopts) it from."""
        asked = self.requested
        if asked is None:
            raise ValueError(f"instance {self.instance_id} has no request")
        return InstanceScheduled(
            host=host.name,
            rack=host.rack,
            zone=host.zone,
            attempt=attempt,
            name=asked.name,
            flavor=asked.flavor,
            image=asked.image,
            network=asked.network,
            delete_on_termination=asked.delete_on_termination,
            restart_policy=asked.restart_policy,
            hostname=asked.hostname,
            key_name=asked.key_name,
            public_keys=asked.public_keys,
            user_data=asked.user_data,
            config_drive=asked.config_drive,
        )


class MigrationTarget(NamedTuple):
    """What a host announced for receiving live migrations (`HostRegistered` v3, v4)."""

    uri: str
    address: str | None
    ceph_user: str | None = None
    ceph_secret_uuid: str | None = None


@dataclass(slots=True)
class SchedulerState:
    """Everything the scheduler decides from. Mutated in place by ``evolve`` only."""

    default_ratios: AllocationRatios = field(default_factory=AllocationRatios)
    """Ratios from configuration, until an administrator sets the default (not snapshotted)."""
    ratios_set: AllocationRatios | None = None
    """The default ratios an administrator set (AllocationRatiosSet on ``*``)."""
    ratio_overrides: dict[str, AllocationRatios] = field(default_factory=dict)
    """Per-host ratios set by administrators."""
    hosts: dict[str, Host] = field(default_factory=dict)
    """Hosts as their agents registered them (status is kept apart, below)."""
    disabled: set[str] = field(default_factory=set)
    """Hosts an administrator took out of scheduling (known or not yet registered)."""
    down: dict[str, datetime | None] = field(default_factory=dict)
    """Hosts marked down, with the last heartbeat they were marked down after."""
    last_seen: dict[str, datetime] = field(default_factory=dict)
    """Event time of each host's newest heartbeat or registration."""
    groups: dict[str, ServerGroup] = field(default_factory=dict)
    """Server groups by id; members are the instances holding a claim in the group."""
    claims: Claims = field(default_factory=Claims)
    """Resources held, per instance; only InstanceScheduled and ClaimReleased change it."""
    instances: dict[str, InstanceRecord] = field(default_factory=dict)
    """Instances not deleted yet."""
    pending: set[str] = field(default_factory=set)
    """Requested instances without a placement or refusal yet (held for their server group)."""
    deleted: dict[str, None] = field(default_factory=dict)
    """Recently deleted instance ids, oldest first (bounded by TOMBSTONE_LIMIT)."""
    flows: FlowBook = field(default_factory=FlowBook)
    """The flows the scheduler runs (live migrations), folded from its own flow events."""
    migration_targets: dict[str, MigrationTarget] = field(default_factory=dict)
    """Host -> how a migration reaches it, for the hosts that receive live migrations
    (`HostRegistered.migration_uri`); a host absent here cannot be a migration's destination."""
    stopped: set[str] = field(default_factory=set)
    """Instances whose domain is shut off (InstanceStopped, until started again): a drain
    leaves them placed where they are, running nothing."""
    view_cache: PlacementView | None = None
    """The derived view, or None when inventory changed since it was built."""

    @property
    def ratios(self) -> AllocationRatios:
        return self.default_ratios if self.ratios_set is None else self.ratios_set

    def effective_host(self, name: str) -> Host:
        """The registered host with its current status (down, disabled)."""
        host = self.hosts[name]
        return replace(
            host, state="down" if name in self.down else "up", enabled=name not in self.disabled
        )

    def view(self) -> PlacementView:
        """The placement view of the current facts; built once per inventory change."""
        if self.view_cache is None:
            self.view_cache = PlacementView(
                (self.effective_host(name) for name in self.hosts),
                claims=self.claims,
                server_groups=self.groups.values(),
                ratios=self.ratios,
                ratio_overrides=self.ratio_overrides,
            )
        return self.view_cache

    def waiting_for(self, group_id: str | None = None) -> list[InstanceRecord]:
        """Pending requests naming a server group not known (or ``group_id``), oldest first."""
        held = []
        for instance_id in self.pending:
            record = self.instances[instance_id]
            asked = record.requested
            if asked is None or asked.server_group is None or record.deletion_requested:
                continue
            if asked.server_group == group_id or (
                group_id is None and asked.server_group not in self.groups
            ):
                held.append(record)
        return sorted(held, key=lambda r: (r.requested_at or datetime.min, r.instance_id))

    # -- updates that keep the view in step ------------------------------------------------

    def status_changed(self, name: str) -> None:
        if self.view_cache is not None and name in self.hosts:
            self.view_cache = self.view_cache.with_host(self.effective_host(name))

    def inventory_changed(self) -> None:
        self.view_cache = None

    def add_claim(self, claim: Claim) -> None:
        if self.view_cache is not None:
            self.view_cache = self.view_cache.add_claim(claim)
            self.claims = self.view_cache.claims
        else:
            self.claims = self.claims.add(claim)

    def release_claim(self, instance_id: str) -> None:
        if self.view_cache is not None:
            self.view_cache = self.view_cache.release(instance_id)
            self.claims = self.view_cache.claims
        else:
            self.claims = self.claims.release(instance_id)

    def set_group(self, group: ServerGroup) -> None:
        self.groups[group.id] = group
        if self.view_cache is not None:
            self.view_cache = self.view_cache.with_server_group(group)

    def forget_if_gone(self, instance_id: str) -> None:
        """Drop a deleted instance's record once it holds no claim any more."""
        if instance_id in self.deleted and instance_id not in self.claims:
            self.instances.pop(instance_id, None)
            self.pending.discard(instance_id)
