"""The network agent as a Virga service: its topics, fold, decisions and effect handlers."""

from __future__ import annotations

from functools import partial
from typing import Any

from virga_eventlog import event_topic
from virga_network.agent import state as agent_state
from virga_network.agent.config import AgentConfig
from virga_network.agent.decide import decide, on_ready, tick
from virga_network.agent.driver import NetworkDriver
from virga_network.agent.effects import AgentEffects
from virga_network.agent.state import AgentState, evolve
from virga_runtime import RunnerConfig, ServiceDefinition

SERVICE_NAME = "network"
"""Agents write the network topic beside the controller (as `network@<host>`)."""


def definition(config: AgentConfig, driver: NetworkDriver) -> ServiceDefinition[AgentState]:
    """The agent of `config.host`, acting through `driver`.

    Reads `<ns>.api`; writes `<ns>.network`, which it also follows (run it with
    `runner_config(config)`) for the controller's and the other agents' events.
    """

    def restore(data: Any) -> AgentState:
        state = agent_state.restore(data)
        if state.host != config.host:
            raise ValueError(f"snapshot of host {state.host!r} offered to {config.host!r}")
        return state

    return ServiceDefinition(
        name=SERVICE_NAME,
        input_topics=(event_topic("gateway", config.namespace),),
        output_topic=event_topic("network", config.namespace),
        initial_state=partial(AgentState, config.host),
        evolve=evolve,
        snapshot=agent_state.snapshot,
        restore=restore,
        decide=partial(decide, config),
        effects=AgentEffects(driver).handlers(),
        tick=partial(tick, config),
        tick_seconds=config.sync_seconds,
        on_ready=partial(on_ready, config),
    )


def runner_config(config: AgentConfig) -> RunnerConfig:
    """One runner per host: the producer is `network@<host>`, and it tails its shared topic."""
    return RunnerConfig(instance=config.host, http_port=config.http_port)
