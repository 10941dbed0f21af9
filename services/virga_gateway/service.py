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
from virga_runtime import Emit, Intent, RunnerConfig, ServiceDefinition


def definition(config: GatewayConfig, namespace: str = "virga") -> ServiceDefinition[GatewayState]:
    """Reads the scheduler's and compute agents' facts; writes only through `runner.append`."""
    admin_sha256 = token_sha256(config.admin_token)
    retention = timedelta(seconds=config.retention_seconds)

    def evolve(current: GatewayState, envelope: Envelope) -> GatewayState:
        return state.evolve(current, envelope, retention)

    def on_ready(current: GatewayState) -> Sequence[Intent]:
        return admin_token_rotation(current, admin_sha256)

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
        placed_on=placed_on,
    )


def placed_on(current: GatewayState, instance_id: str) -> str | None:
    """The host the instance is placed on once its agent there has reported it running or
    stopped: another host's events about it are then refused (`virga_runtime.hostcheck`).
    Before that, a failed spawn's host may still report on an instance placed anew. While
    an evacuation runs, the host it claimed is the one that reports (the rebuilt guest; any host
    until the gateway has read that claim); while
    a resize moves it, the host its port was switched to."""
    instance = current.instances.get(instance_id)
    if instance is None or instance.compute_status is None:
        return None
    if instance.resizing and instance.resizing_to is not None:
        return instance.resizing_to
    if instance.evacuating and (instance.migrating or instance.migration_pending):
        # The destination's reports (the rebuilt guest) may be read before the scheduler's
        # claim that names it, on another topic: until the gateway knows the destination, any
        # host may report (the flow itself accepts only the host it asked); then only it.
        return instance.evacuating_to
    return instance.placed_on if instance.compute_host == instance.placed_on else None


def admin_token_rotation(current: GatewayState, admin_sha256: str) -> tuple[Emit, ...]:
    """Pure: issue the configured admin token once, and revoke every other admin token.

    The configured token is the only admin token: starting the gateway with a new one is a
    rotation, and the old one stops working in the same transaction the new one is issued in.
    A restart with the same token finds it in the projection and changes nothing. A token
    once revoked stays revoked, even if it is configured again.
    """
    emits: list[Emit] = []
    if admin_sha256 not in current.token_ids_by_sha256:
        issued = api.TokenIssued(token_sha256=admin_sha256, role="admin")
        emits.append(Emit(issued, admin_token_id(admin_sha256), None))
    current_id = current.token_ids_by_sha256.get(admin_sha256, admin_token_id(admin_sha256))
    for token in current.tokens.values():
        if token.role == "admin" and not token.revoked and token.id != current_id:
            emits.append(Emit(api.TokenRevoked(), token.id, None))
    return tuple(emits)


def gateway_runner(
    config: GatewayConfig, settings: KafkaSettings, runner_config: RunnerConfig | None = None
) -> GatewayRunner:
    """The runner `build_app` needs, for `settings.namespace`."""
    return GatewayRunner(
        definition(config, settings.namespace),
        settings,
        runner_config or RunnerConfig(),
        commit_seconds=config.write_timeout_seconds,
    )
