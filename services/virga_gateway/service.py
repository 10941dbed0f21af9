"""The gateway as a Virga service: its topics, its fold, and the admin token it registers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from virga_eventlog import KafkaSettings, event_topic
from virga_events import Envelope
from virga_events.catalog import api
from virga_gateway import state
from virga_gateway.config import GatewayConfig
from virga_gateway.runner import GatewayRunner
from virga_gateway.state import GatewayState
from virga_gateway.tokens import admin_token_id, token_sha256
from virga_runtime import Emit, Intent, RunnerConfig, ServiceDefinition, ServiceRunner


def definition(config: GatewayConfig, namespace: str = "virga") -> ServiceDefinition[GatewayState]:
    """Reads the scheduler's and compute agents' facts; writes only through `runner.append`."""
    admin_sha256 = token_sha256(config.admin_token)
    retention = timedelta(seconds=config.retention_seconds)

    def evolve(current: GatewayState, envelope: Envelope) -> GatewayState:
        return state.evolve(current, envelope, retention)

    def on_ready(current: GatewayState) -> Sequence[Intent]:
        # Pure: issue the configured admin token once; a restart finds it in the projection.
        if admin_sha256 in current.token_ids_by_sha256:
            return ()
        event = api.TokenIssued(token_sha256=admin_sha256, role="admin")
        return (Emit(event, admin_token_id(admin_sha256), None),)

    return ServiceDefinition(
        name="gateway",
        input_topics=(
            event_topic("scheduler", namespace),
            event_topic("compute", namespace),
            event_topic("network", namespace),
            event_topic("billing", namespace),
            event_topic("storage", namespace),
        ),
        output_topic=event_topic("gateway", namespace),
        initial_state=GatewayState,
        evolve=evolve,
        snapshot=state.snapshot,
        restore=state.restore,
        on_ready=on_ready,
        state_version=state.STATE_VERSION,
    )


def gateway_runner(
    config: GatewayConfig, settings: KafkaSettings, runner_config: RunnerConfig | None = None
) -> GatewayRunner:
    """The runner `build_app` needs, for `settings.namespace`."""
    return ServiceRunner(
        definition(config, settings.namespace), settings, runner_config or RunnerConfig()
    )
