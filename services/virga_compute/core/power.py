"""Guests that change power state without Virga asking: what the agent records, and what the
instance's restart policy makes happen next. Pure.

The hypervisor's reports arrive as signals (`services/virga_compute/power_watch.py` makes
them): `PowerChanged` for one domain (a libvirt lifecycle event, within a second of the
change) and `PowerSynced` for all of them (a periodic sync, and one after each reconnection
to the hypervisor, so a change made while the agent was not listening is found too). Both are
compared with what the agent's own events say:

- a domain found off that should run: `InstanceStopped` with the cause the hypervisor gives
  (`shutdown`, `destroyed`, `crashed`), at the signal's time, so its usage stops then; if its
  restart policy says so (`InstanceRecord.restarts_after`), a `Restart` follows, whose outcome
  is `InstanceRestarted` (or `InstanceFailed` with phase `restart`);
- a domain gone altogether (a sync finds none): `InstanceDomainLost`;
- a domain found running that was recorded stopped (started by hand): `InstanceStarted`.

An instance Virga is acting on is left alone, so a stop Virga did is never recorded twice:
while it builds, while its deletion or a power request awaits its outcome (`actions`), and
while a restart or a live migration is under way. The outcome of that action records the
state, and what the hypervisor reported before that outcome (`changed_at`), such as the off
and on of a hard reboot whose events are decided after it, is stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from virga_compute.config import ComputeConfig
from virga_compute.core.decide import build_spec
from virga_compute.core.model import ComputeState, InstanceRecord
from virga_compute.core.spec import DomainInfo, DomainState
from virga_compute.effects.intents import Restart
from virga_events.catalog.compute import (
    InstanceDomainLost,
    InstanceFailed,
    InstanceStarted,
    InstanceStopped,
    StopCause,
)
from virga_runtime.service import Emit, Intent

_OFF = frozenset({DomainState.SHUTOFF, DomainState.CRASHED})


@dataclass(frozen=True, slots=True)
class PowerChanged:
    """The hypervisor reported a new state of one Virga domain (a lifecycle event)."""

    instance_id: str
    state: DomainState
    cause: StopCause | None
    """Why it is off, as the hypervisor says; None when it is not off or does not say."""
    at: datetime
    """When the agent learnt of it: the time its usage stops."""


@dataclass(frozen=True, slots=True)
class PowerSynced:
    """Every Virga domain of the host with its state, read at `at`."""

    domains: tuple[DomainInfo, ...]
    at: datetime


GuestSignal = PowerChanged | PowerSynced


def on_guest(config: ComputeConfig, state: ComputeState, signal: GuestSignal) -> Sequence[Intent]:
    """What to record, and do, about a signal from the hypervisor (see the module docstring)."""
    if isinstance(signal, PowerChanged):
        record = state.mine(signal.instance_id)
        if record is None:
            return ()
        return _observed(config, state, record, signal.state, signal.cause, signal.at)
    found = {info.instance_id: info for info in signal.domains}
    intents: list[Intent] = []
    for instance_id in sorted(state.instances):
        record = state.instances[instance_id]
        info = found.get(instance_id)
        if info is None:
            intents.extend(_observed(config, state, record, DomainState.MISSING, None, signal.at))
        else:
            intents.extend(_observed(config, state, record, info.state, info.cause, signal.at))
    return intents


def _busy(record: InstanceRecord) -> bool:
    """Virga is acting on the instance: the outcome of that action records its state."""
    return (
        record.status == "building"
        or record.deletion_event_id is not None
        or bool(record.actions)
        or record.restarting
        or record.migration_flow is not None
        or record.resize_flow is not None
    )


def _observed(
    config: ComputeConfig,
    state: ComputeState,
    record: InstanceRecord,
    seen: DomainState,
    cause: StopCause | None,
    at: datetime,
) -> Sequence[Intent]:
    if _busy(record) or record.domain_lost:
        return ()
    if record.changed_at is not None and at <= record.changed_at:
        return ()  # seen before the agent's latest report (a reboot's off and on): stale
    instance_id, tenant_id, host = record.instance_id, record.tenant_id, state.host
    if seen is DomainState.MISSING:
        return [Emit(InstanceDomainLost(host=host), instance_id, tenant_id, occurred_at=at)]
    if seen in _OFF and record.status == "running":
        if cause is None:
            cause = "crashed" if seen is DomainState.CRASHED else "destroyed"
        stopped = Emit(InstanceStopped(host=host, cause=cause), instance_id, tenant_id, at)
        if not record.restarts_after(cause):
            return [stopped]
        try:
            spec = build_spec(config, state, record)
        except ValueError as exc:
            failed = InstanceFailed(host=host, phase="restart", reason=str(exc))
            return [stopped, Emit(failed, instance_id, tenant_id)]
        return [stopped, Restart(spec, tenant_id, host, cause, record.restart_policy)]
    if seen is DomainState.RUNNING and record.status == "stopped":
        return [Emit(InstanceStarted(host=host), instance_id, tenant_id, occurred_at=at)]
    return ()
