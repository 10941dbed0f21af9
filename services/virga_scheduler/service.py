"""The scheduler as a Virga service: its topics, fold, decisions and time-driven checks."""

from __future__ import annotations

from functools import partial
from typing import Any

from virga_eventlog import event_topic
from virga_runtime import RunnerConfig, ServiceDefinition
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core import snapshot
from virga_scheduler.core.decide import decide, tick
from virga_scheduler.core.evacuation import evacuated_to
from virga_scheduler.core.fold import evolve
from virga_scheduler.core.migration import moved_to
from virga_scheduler.core.model import SchedulerState
from virga_scheduler.core.resize import resized_to

SERVICE_NAME = "scheduler"


def definition(config: SchedulerConfig) -> ServiceDefinition[SchedulerState]:
    """Reads requests from ``<ns>.api``, hosts and instance outcomes from ``<ns>.compute``,
    the network agents' answers to a live migration from ``<ns>.network`` and the storage
    service's to an evacuation's fence and a resize's grow from ``<ns>.storage``; writes placements,
    refusals, claims, host health and its flows' events to ``<ns>.scheduler``."""
    namespace = config.namespace

    def restore(data: Any) -> SchedulerState:
        return snapshot.restore(data, config.ratios)

    return ServiceDefinition(
        name=SERVICE_NAME,
        input_topics=(
            event_topic("gateway", namespace),
            event_topic("compute", namespace),
            event_topic("network", namespace),
            event_topic("storage", namespace),
        ),
        output_topic=event_topic(SERVICE_NAME, namespace),
        initial_state=partial(SchedulerState, config.ratios),
        evolve=evolve,
        snapshot=snapshot.snapshot,
        restore=restore,
        decide=partial(decide, config),
        tick=partial(tick, config),
        tick_seconds=config.tick_seconds,
        placed_on=placed_on,
    )


def placed_on(state: SchedulerState, instance_id: str) -> str | None:
    """The host the instance holds its claim on, or the one it was live-migrated (or is being
    evacuated, or resized) to before the claim follows (`moved_to`, `evacuated_to`,
    `resized_to`): a host's events about an instance placed elsewhere are refused
    (`virga_runtime.hostcheck`)."""
    moved = (
        moved_to(state, instance_id)
        or evacuated_to(state, instance_id)
        or resized_to(state, instance_id)
    )
    if moved is not None:
        return moved
    claim = state.claims.get(instance_id)
    return claim.host if claim is not None else None


def runner_config(config: SchedulerConfig) -> RunnerConfig:
    """A singleton: the one writer of claims, so there is no instance suffix."""
    return RunnerConfig(http_port=config.http_port)
