"""The compute agent as a Virga service: its topics, fold, decisions and effect handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import Any

from virga_compute.config import ComputeConfig
from virga_compute.console.gate import ConsoleGate
from virga_compute.core import snapshot
from virga_compute.core.console import ConsoleOpen, open_session
from virga_compute.core.decide import decide, on_ready, tick
from virga_compute.core.fold import evolve
from virga_compute.core.model import ComputeState
from virga_compute.core.power import GuestSignal, on_guest
from virga_compute.drivers.base import ComputeDriver
from virga_compute.effects.evacuation import evacuation_handlers
from virga_compute.effects.lifecycle import ComputeEffects
from virga_compute.effects.migration import migration_handlers
from virga_compute.effects.resize import resize_handlers
from virga_compute.effects.restart import restart_handlers
from virga_compute.power_watch import guest_signals
from virga_eventlog import event_topic
from virga_runtime import RunnerConfig, ServiceDefinition
from virga_runtime.service import Intent

SERVICE_NAME = "compute"


def on_signal(
    config: ComputeConfig, state: ComputeState, signal: GuestSignal | ConsoleOpen
) -> Sequence[Intent]:
    """Pure: a console claim (`core.console`) or a hypervisor's report (`core.power`)."""
    if isinstance(signal, ConsoleOpen):
        return open_session(state, signal)
    return on_guest(config, state, signal)


def definition(
    config: ComputeConfig, driver: ComputeDriver, gate: ConsoleGate | None = None
) -> ServiceDefinition[ComputeState]:
    """The agent of `config.host`, acting through `driver` (connected by the caller).

    Reads placements from `<ns>.scheduler`, requests from `<ns>.api`, boot volumes from
    `<ns>.storage` and port bindings from `<ns>.network`; writes `<ns>.compute.<host>` (run it
    with `runner_config(config)`, so it also follows its peers' topics). `gate`: the console
    server's claims, decided as signals next to the hypervisor's.
    """
    namespace = config.namespace

    def signals() -> AsyncIterator[Any]:
        guests = guest_signals(driver, config.power_sync_seconds)
        return guests if gate is None else gate.signals(guests)

    def restore(data: Any) -> ComputeState:
        state = snapshot.restore(data)
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
        initial_state=partial(ComputeState, config.host),
        evolve=evolve,
        snapshot=snapshot.snapshot,
        restore=restore,
        decide=partial(decide, config),
        effects={
            **ComputeEffects(driver).handlers(),
            **restart_handlers(driver),
            **migration_handlers(driver),
            **evacuation_handlers(driver),
            **resize_handlers(driver),
        },
        tick=partial(tick, config),
        tick_seconds=config.tick_seconds,
        on_ready=partial(on_ready, config),
        # Guests that power off, crash or are destroyed without Virga asking (`core.power`).
        signals=signals,
        on_signal=partial(on_signal, config),
    )


def runner_config(config: ComputeConfig) -> RunnerConfig:
    """One runner per host: the producer is `compute@<host>`."""
    return RunnerConfig(
        instance=config.host,
        http_port=config.http_port,
        host_lease_seconds=config.host_lease_seconds,
    )
