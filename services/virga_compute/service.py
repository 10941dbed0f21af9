"""The compute agent as a Virga service: its topics, fold, decisions and effect handlers."""

from __future__ import annotations

from functools import partial
from typing import Any

from virga_compute import agent_snapshot
from virga_compute.agent_decide import decide, on_ready, tick
from virga_compute.agent_effects import ComputeEffects
from virga_compute.agent_state import AgentState, evolve
from virga_compute.config import AgentConfig
from virga_compute.driver import ComputeDriver
from virga_eventlog import event_topic
from virga_runtime import RunnerConfig, ServiceDefinition

SERVICE_NAME = "compute"


def definition(config: AgentConfig, driver: ComputeDriver) -> ServiceDefinition[AgentState]:
    """The agent of `config.host`, acting through `driver` (connected by the caller).

    Reads placements from `<ns>.scheduler`, requests from `<ns>.api`, boot volumes from
    `<ns>.storage` and port bindings from `<ns>.network`; writes `<ns>.compute` (run it with
    `runner_config(config)`, so it also follows its peers on that topic).
    """
    namespace = config.namespace

    def restore(data: Any) -> AgentState:
        state = agent_snapshot.restore(data)
        if state.host != config.host:
            raise ValueError(f"snapshot of host {state.host!r} offered to {config.host!r}")
        return state

    return ServiceDefinition(
        name=SERVICE_NAME,
        input_topics=(
            event_topic("scheduler", namespace),
            event_topic("gateway", namespace),
            event_topic("storage", namespace),
            event_topic("network", namespace),
        ),
        output_topic=event_topic("compute", namespace),
        initial_state=partial(AgentState, config.host),
        evolve=evolve,
        snapshot=agent_snapshot.snapshot,
        restore=restore,
        decide=partial(decide, config),
        effects=ComputeEffects(driver).handlers(),
        tick=partial(tick, config),
        tick_seconds=config.tick_seconds,
        on_ready=partial(on_ready, config),
    )


def runner_config(config: AgentConfig) -> RunnerConfig:
    """One runner per host: the producer is `compute@<host>`."""
    return RunnerConfig(instance=config.host, http_port=config.http_port)
