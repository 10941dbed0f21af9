"""The storage service as a Virga service: its topics, fold, decisions and effect handlers."""

from __future__ import annotations

from functools import partial

from virga_eventlog import event_topic
from virga_runtime import RunnerConfig, ServiceDefinition
from virga_storage import state
from virga_storage.config import StorageConfig
from virga_storage.decide import decide
from virga_storage.driver import StorageDriver
from virga_storage.effects import StorageEffects
from virga_storage.state import StorageState, evolve

SERVICE_NAME = "storage"


def definition(config: StorageConfig, driver: StorageDriver) -> ServiceDefinition[StorageState]:
    """The storage service over `driver` (connected by the caller).

    Reads requests from `<ns>.api`, placements from `<ns>.scheduler` (boot volumes) and
    instance deletions from `<ns>.compute`; writes `<ns>.storage`.
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
        initial_state=StorageState,
        evolve=evolve,
        snapshot=state.snapshot,
        restore=state.restore,
        decide=partial(decide, config),
        effects=StorageEffects(driver).handlers(),
    )


def runner_config(config: StorageConfig) -> RunnerConfig:
    return RunnerConfig(http_port=config.http_port)
