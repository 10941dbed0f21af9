"""How host facts (agents' registrations and heartbeats, the scheduler's up/down verdicts,
admins' enable/disable and ratios) fold into the projection, in any order across topics."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from virga_events import Envelope
from virga_events.catalog import api, compute, scheduler
from virga_gateway.hosts.model import Host, Ratios
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()


def host_record(state: GatewayState, name: str) -> Host:
    """The host called `name`; a stub, not listed, until its agent registers it."""
    host = state.hosts.get(name)
    if host is None:
        host = state.hosts[name] = Host(name=name)
    return host


def _set_up_or_down(host: Host, up: bool, at: datetime) -> None:
    # Registration (compute) and the scheduler's verdicts come from two topics: the newest
    # fact by event time wins, whichever arrives last.
    if host.state_at is None or at >= host.state_at:
        host.state = "up" if up else "down"
        host.state_at = at


def _heard_from(host: Host, at: datetime) -> None:
    if host.last_heartbeat_at is None or at > host.last_heartbeat_at:
        host.last_heartbeat_at = at


@folds.on(compute.HostRegistered)
def _registered(state: GatewayState, env: Envelope, event: compute.HostRegistered) -> None:
    host = host_record(state, env.aggregate_id)
    host.registered = True
    host.rack, host.zone, host.traits = event.rack, event.zone, event.traits
    host.console_endpoint = event.console_endpoint
    host.receives_migrations = event.migration_uri is not None
    host.capacity.vcpus = event.vcpus
    host.capacity.ram_mb = event.ram_mb
    host.capacity.disk_gb = event.disk_gb
    _heard_from(host, env.occurred_at)
    _set_up_or_down(host, True, env.occurred_at)


@folds.on(compute.HostHeartbeat)
def _heartbeat(state: GatewayState, env: Envelope, event: compute.HostHeartbeat) -> None:
    _heard_from(host_record(state, env.aggregate_id), env.occurred_at)


@folds.on(scheduler.HostMarkedDown)
def _marked_down(state: GatewayState, env: Envelope, event: scheduler.HostMarkedDown) -> None:
    _set_up_or_down(host_record(state, env.aggregate_id), False, env.occurred_at)


@folds.on(scheduler.HostMarkedUp)
def _marked_up(state: GatewayState, env: Envelope, event: scheduler.HostMarkedUp) -> None:
    _set_up_or_down(host_record(state, env.aggregate_id), True, env.occurred_at)


@folds.on(api.HostDisabled)
def _disabled(state: GatewayState, env: Envelope, event: api.HostDisabled) -> None:
    host = host_record(state, env.aggregate_id)
    host.enabled, host.disabled_reason = False, event.reason


@folds.on(api.HostEnabled)
def _enabled(state: GatewayState, env: Envelope, event: api.HostEnabled) -> None:
    host = host_record(state, env.aggregate_id)
    host.enabled, host.disabled_reason = True, ""


@folds.on(api.AllocationRatiosSet)
def _ratios_set(state: GatewayState, env: Envelope, event: api.AllocationRatiosSet) -> None:
    state.allocation_ratios[env.aggregate_id] = Ratios(event.cpu, event.ram, event.disk)
