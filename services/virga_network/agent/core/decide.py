"""The agent's decisions: pure functions of its state (and the event or time at hand)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from virga_events import Envelope
from virga_events.catalog.network import (
    PortRequested,
    PortSecurityGroupsChanged,
    SecurityGroupCreated,
    SecurityGroupDeleted,
    SecurityGroupRuleAdded,
    SecurityGroupRuleDeleted,
)
from virga_network.agent.config import NetworkAgentConfig
from virga_network.agent.core import migration
from virga_network.agent.core.model import NetworkAgentState
from virga_network.agent.core.plan import host_plan
from virga_network.agent.effects.intents import Converge, Register
from virga_runtime.service import Intent


def converge(config: NetworkAgentConfig, state: NetworkAgentState) -> Converge:
    edges = config.edge and config.driver == "netlink"
    return Converge(host_plan(state, config.vtep_ip, config.prefix, edges))


_GROUP_CHANGES = (
    SecurityGroupCreated,
    SecurityGroupDeleted,
    SecurityGroupRuleAdded,
    SecurityGroupRuleDeleted,
    PortSecurityGroupsChanged,
)
"""Requests that change what ports' filters allow: applied to live ports at once."""


def decide(
    config: NetworkAgentConfig, state: NetworkAgentState, envelope: Envelope
) -> Sequence[Intent]:
    """Requests on `<ns>.api` that change this host's plan, and the scheduler's migration
    requests to this host (`<ns>.scheduler`), and a migration's switch on every host (its
    guest runs on the destination now: `migration.moved`), converge at once; the controller's
    and peers' events (on the agent's own topic) wait for the next tick."""
    event = envelope.payload
    if isinstance(event, (*_GROUP_CHANGES, migration.SWITCH)) or (
        isinstance(event, (PortRequested, *migration.REQUESTS)) and event.host == state.host
    ):
        return [converge(config, state)]
    return ()


def tick(config: NetworkAgentConfig, state: NetworkAgentState, now: datetime) -> Sequence[Intent]:
    """Converge on what the log wants (the effect does nothing if that did not change)."""
    return [converge(config, state)]


def on_ready(config: NetworkAgentConfig, state: NetworkAgentState) -> Sequence[Intent]:
    """Check the host, register (once per VTEP), then converge fully: a restart removes what
    the log no longer wants."""
    announce = state.vteps.get(config.host) != config.vtep_ip
    return [Register(config.host, config.vtep_ip, announce), converge(config, state)]
