"""Pure planning of the start-up reconciliation: the log's instances against the host's domains.

Policy (see `RestartPolicy`): with `restart` the log wins and the agent makes the hypervisor
match it; with `report` the hypervisor wins and the agent only records what it found. Either
way a Virga domain the log does not place here (unknown, or of a deleted instance) is only
reported, never destroyed: it may hold a tenant's data, and deciding its fate is an
operator's call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from virga_compute.config import RestartPolicy
from virga_compute.core.spec import DomainInfo, DomainState, InstanceSpec

_OFF = frozenset({DomainState.SHUTOFF, DomainState.CRASHED})

StepAction = Literal[
    "report_lost",  # InstanceDomainLost
    "respawn",  # spawn it again -> InstanceStarted | InstanceFailed(restart)
    "power_on",  # start (or resume) it -> InstanceStarted | InstanceFailed(restart)
    "power_off",  # stop it -> InstanceStopped | InstanceFailed(stop)
    "record_stopped",  # InstanceStopped: it is off, and stays so
    "record_running",  # InstanceStarted: it runs, and keeps running
    "report_unknown",  # UnknownDomainFound
]


@dataclass(frozen=True, slots=True)
class Expected:
    """An instance the log places on this host, as reconciliation needs it."""

    spec: InstanceSpec
    """How to spawn it again."""
    tenant_id: str | None
    should_run: bool
    """False once a stop was the last thing that happened to it."""
    lost: bool
    """Already reported lost (InstanceDomainLost), so not reported again."""


@dataclass(frozen=True, slots=True)
class Step:
    """One thing reconciliation does about one instance."""

    action: StepAction
    instance_id: str


def plan(
    expected: Iterable[Expected],
    found: Iterable[DomainInfo],
    policy: RestartPolicy,
    *,
    leave_alone: Iterable[str] = (),
) -> list[Step]:
    """What to do, in order: per expected instance (by id), then unknown domains.

    `leave_alone` are ids with an operation in flight (a deletion being carried out): neither
    expected nor unknown.
    """
    domains = {info.instance_id: info.state for info in found}
    restart = policy == "restart"
    steps: list[Step] = []
    wanted = sorted(expected, key=lambda e: e.spec.instance_id)
    for item in wanted:
        instance_id = item.spec.instance_id
        actions = _actions(item, domains.get(instance_id), restart=restart)
        steps.extend(Step(action, instance_id) for action in actions)
    known = {item.spec.instance_id for item in wanted} | set(leave_alone)
    steps.extend(Step("report_unknown", i) for i in sorted(domains) if i not in known)
    return steps


def _actions(item: Expected, state: DomainState | None, *, restart: bool) -> Sequence[StepAction]:
    if state is None:
        report: list[StepAction] = [] if item.lost else ["report_lost"]
        # A stopped instance stays lost until a start request spawns it again.
        return [*report, "respawn"] if item.should_run and restart else report
    if state in _OFF:
        if item.should_run:
            return ["power_on"] if restart else ["record_stopped"]
        return ["record_stopped"] if item.lost else []
    # Active: running, paused, shutting down, or a state the hypervisor cannot tell.
    if not item.should_run:
        return ["power_off"] if restart else ["record_running"]
    if state is DomainState.PAUSED and restart:
        return ["power_on"]  # resumes it
    return ["record_running"] if item.lost else []
