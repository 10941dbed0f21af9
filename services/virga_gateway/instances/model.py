"""The projection's records of instances and their event history.

msgspec Structs, so the whole projection snapshots to JSON and back in one call. An instance
keeps each topic's facts apart because a rebuild reads the inputs before the gateway's own
topic: its status is derived from those facts by precedence, never from arrival order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from virga_events.catalog import Flavor
from virga_events.catalog.api import InstanceRestartPolicy
from virga_events.catalog.compute import StopCause

InstanceStatus = Literal[
    "BUILDING",
    "RUNNING",
    "MIGRATING",
    "EVACUATING",
    "RESIZING",
    "STOPPED",
    "ERROR",
    "DELETING",
    "DELETED",
]
INSTANCE_STATUSES: tuple[InstanceStatus, ...] = (
    "BUILDING",
    "RUNNING",
    "MIGRATING",
    "EVACUATING",
    "RESIZING",
    "STOPPED",
    "ERROR",
    "DELETING",
    "DELETED",
)
HISTORY_LIMIT = 1000
"""Events kept per instance for `GET /v1/instances/{id}/events`; the log keeps them all."""


class HistoryEntry(msgspec.Struct, frozen=True):
    """One event about an instance, as `GET /v1/instances/{id}/events` shows it."""

    event_id: str
    type: str
    producer: str
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None
    payload: dict[str, Any]


class InstanceAddress(msgspec.Struct, frozen=True, kw_only=True):
    """An address of an instance's port, from the network controller's PortAllocated."""

    network: str
    ip: str
    mac: str


class Instance(msgspec.Struct, kw_only=True):
    """An instance as the gateway knows it; a stub until its InstanceRequested is folded."""

    id: str
    requested: bool = False
    name: str = ""
    tenant_id: str = ""
    flavor: Flavor | None = None
    image: str | None = None
    network: str | None = None
    server_group: str | None = None
    availability_zone: str | None = None
    required_traits: tuple[str, ...] = ()
    delete_on_termination: bool = True
    restart_policy: InstanceRestartPolicy = "never"
    hostname: str | None = None
    key_name: str | None = None
    config_drive: bool = False
    stop_cause: StopCause | None = None
    """Why it is off, from the latest InstanceStopped; None once it runs again."""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # Facts per topic; within one topic an instance's events arrive in order.
    deletion_requested: bool = False
    placed_on: str | None = None
    """Host of the latest placement (scheduler); None after scheduling failed."""
    scheduling_fault: str | None = None
    compute_status: Literal["RUNNING", "STOPPED"] | None = None
    compute_host: str | None = None
    compute_fault: str | None = None
    """The last failure the compute agents reported since their last success."""
    migration_requested: str | None = None
    """The flow id of the latest LiveMigrationRequested (api)."""
    migration_started: str | None = None
    """The flow id of the latest live migration the scheduler started (FlowStarted)."""
    migrating: bool = False
    """That flow runs (from its FlowStarted to its FlowCompleted or FlowFailed)."""
    evacuating: bool = False
    """The flow that runs is an evacuation (EvacuationRequested shares the two ids above)."""
    evacuating_to: str | None = None
    """The host that evacuation claimed (MigrationDestinationClaimed), while it runs: that
    host's agent reports the rebuilt guest before the claim moves to it."""
    resize_flavor: Flavor | None = None
    """The flavor a resize asked for (api), until the scheduler moved the claim to it or
    undid the resize: quotas count the larger of it and `flavor` meanwhile."""
    resize_started: str | None = None
    """The flow id of the latest resize the scheduler started (FlowStarted)."""
    resizing: bool = False
    """That flow runs (from its FlowStarted to its FlowCompleted or FlowFailed)."""
    resizing_to: str | None = None
    """The host a resize that moves hosts switched its port to (MigrationPortSwitchRequested),
    while it runs: that host's agents report on it before the claim moves there."""
    deleted: bool = False
    deleted_at: datetime | None = None
    """Event time of its deletion (retention counts from it)."""
    history: list[HistoryEntry] = msgspec.field(default_factory=list)
    addresses: list[InstanceAddress] = msgspec.field(default_factory=list)
    """Its port's addresses (network controller), until the port is deleted."""
    floating_ips: dict[str, str] = msgspec.field(default_factory=dict)
    """Floating IP id -> address ("" until known) of those pointed at its port."""
    attached_volumes: dict[str, str] = msgspec.field(default_factory=dict)
    """Volume id -> the device the guest sees, as its compute agent attached them."""
    boot_volume: str | None = None
    """Its boot volume's id, once the storage service made it (until it is deleted): the
    guest sees it as vda."""

    @property
    def status(self) -> InstanceStatus:
        # Precedence stands in for order: deletion ends everything, a deletion request
        # overrides what the agent last did, the scheduler giving up is final, and otherwise
        # the compute agent's last report tells; before any report the instance is building.
        if self.deleted:
            return "DELETED"
        if self.deletion_requested:
            return "DELETING"
        if self.scheduling_fault is not None:
            return "ERROR"
        if self.migrating:
            return "EVACUATING" if self.evacuating else "MIGRATING"
        if self.resizing or self.resize_flavor is not None:
            return "RESIZING"
        return self.compute_status or "BUILDING"

    @property
    def migration_pending(self) -> bool:
        """A live migration was asked for that the scheduler has not started yet."""
        asked = self.migration_requested
        return asked is not None and asked != self.migration_started

    @property
    def fault(self) -> str | None:
        if self.status == "ERROR":
            return self.scheduling_fault
        return self.compute_fault

    @property
    def host(self) -> str | None:
        return self.placed_on or (None if self.scheduling_fault else self.compute_host)
