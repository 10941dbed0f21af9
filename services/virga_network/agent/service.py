"""The network agent as a Virga service: its topics, fold, decisions and effect handlers."""

from __future__ import annotations

from functools import partial
from typing import Any

from virga_eventlog import event_topic
from virga_network.agent.config import NetworkAgentConfig
from virga_network.agent.core import snapshot as agent_snapshot
from virga_network.agent.core.decide import decide, on_ready, tick
from virga_network.agent.core.fold import evolve
from virga_network.agent.core.model import NetworkAgentState
from virga_network.agent.drivers.base import NetworkDriver
from virga_network.agent.effects.converge import AgentEffects, EdgeServing
from virga_runtime import RunnerConfig, ServiceDefinition

SERVICE_NAME = "network"
"""Agents write the network topic beside the controller (as `network@<host>`)."""


def definition(
    config: NetworkAgentConfig, driver: NetworkDriver, edges: EdgeServing | None = None
) -> ServiceDefinition[NetworkAgentState]:
    """The agent of `config.host`, acting through `driver`, serving its edges with `edges`.

    Reads `<ns>.api` and `<ns>.scheduler` (a migration's requests to the network agents);
    writes `<ns>.network`, which it also follows (run it with `runner_config(config)`) for the
    controller's and the other agents' events.
    """

    def restore(data: Any) -> NetworkAgentState:
        state = agent_snapshot.restore(data)
        if state.host != config.host:
            raise ValueError(f"snapshot of host {state.host!r} offered to {config.host!r}")
        return state

    return ServiceDefinition(
        name=SERVICE_NAME,
        input_topics=(
            event_topic("gateway", config.namespace),
            event_topic("scheduler", config.namespace),
        ),
        output_topic=event_topic("network", config.namespace),
        initial_state=partial(NetworkAgentState, config.host),
        evolve=evolve,
        snapshot=agent_snapshot.snapshot,
        restore=restore,
        state_version=agent_snapshot.STATE_VERSION,
        decide=partial(decide, config),
        effects=AgentEffects(driver, edges=edges).handlers(),
        tick=partial(tick, config),
        tick_seconds=config.sync_seconds,
        on_ready=partial(on_ready, config),
    )


def runner_config(config: NetworkAgentConfig) -> RunnerConfig:
    """One runner per host: the producer is `network@<host>`, and it tails its shared topic."""
    return RunnerConfig(
        instance=config.host,
        http_port=config.http_port,
        host_lease_seconds=config.host_lease_seconds,
    )
