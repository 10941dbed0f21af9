"""Billing as a Virga service: its topics, fold, and the tick that issues invoices."""

from __future__ import annotations

from functools import partial

from virga_billing.config import BillingConfig
from virga_billing.core import snapshot
from virga_billing.core.decide import decide, tick
from virga_eventlog import event_topic
from virga_rating.fold import evolve
from virga_rating.state import BillingState
from virga_runtime import RunnerConfig, ServiceDefinition

SERVICE_NAME = "billing"


def definition(config: BillingConfig) -> ServiceDefinition[BillingState]:
    """Reads prices and flavors from ``<ns>.api``, placements from ``<ns>.scheduler``,
    lifecycle and usage samples from ``<ns>.compute``, volumes from ``<ns>.storage`` and
    public addresses (floating IPs, routers) from ``<ns>.network``;
    writes invoices to ``<ns>.billing``."""
    namespace = config.namespace
    return ServiceDefinition(
        name=SERVICE_NAME,
        input_topics=(
            event_topic("gateway", namespace),
            event_topic("scheduler", namespace),
            event_topic("compute", namespace),
            event_topic("storage", namespace),
            event_topic("network", namespace),
        ),
        output_topic=event_topic(SERVICE_NAME, namespace),
        initial_state=BillingState,
        evolve=evolve,
        snapshot=snapshot.snapshot,
        restore=snapshot.restore,
        decide=decide,
        tick=partial(tick, config),
        tick_seconds=config.tick_seconds,
    )


def runner_config(config: BillingConfig) -> RunnerConfig:
    """A singleton: the one writer of invoices, so there is no instance suffix."""
    return RunnerConfig(http_port=config.http_port)
