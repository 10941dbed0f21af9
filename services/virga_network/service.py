"""The network controller as a Virga service: its topics, fold and decisions (no effects)."""

from __future__ import annotations

from functools import partial

from virga_eventlog import event_topic
from virga_network.config import NetworkConfig
from virga_network.core.decide import decide
from virga_network.core.fold import evolve
from virga_network.core.model import NetworkState
from virga_network.core.snapshot import restore, snapshot
from virga_runtime import RunnerConfig, ServiceDefinition

SERVICE_NAME = "network"


def definition(config: NetworkConfig) -> ServiceDefinition[NetworkState]:
    """The controller: reads requests from `<ns>.api`, placements and deletions of unplaced
    instances from `<ns>.scheduler`, instance deletions from `<ns>.compute`; writes
    `<ns>.network` (which the per-host agents write too).

    It decides only on data (ids, MACs, addresses): there is no side effect to perform, the
    agents plug ports in from its events.
    """
    namespace = config.namespace
    return ServiceDefinition(
        name=SERVICE_NAME,
        input_topics=(
            event_topic("gateway", namespace),
            event_topic("scheduler", namespace),
            event_topic("compute", namespace),
        ),
        output_topic=event_topic(SERVICE_NAME, namespace),
        initial_state=NetworkState,
        evolve=evolve,
        snapshot=snapshot,
        restore=restore,
        decide=partial(decide, config),
    )


def runner_config(config: NetworkConfig) -> RunnerConfig:
    return RunnerConfig(http_port=config.http_port)
