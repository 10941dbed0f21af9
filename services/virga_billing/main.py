"""Billing's composition root: configuration, Kafka settings, the runner."""

from __future__ import annotations

import asyncio

import structlog

from virga_billing.config import BillingConfig
from virga_billing.service import SERVICE_NAME, definition, runner_config
from virga_runtime import ServiceRunner
from virga_runtime.process import configure_logging_from_env, kafka_settings, run_until_signalled

log = structlog.get_logger(__name__)


async def run(config: BillingConfig) -> None:
    configure_logging_from_env(SERVICE_NAME)
    settings = kafka_settings(SERVICE_NAME)
    log.info("configured", grace_seconds=config.grace_seconds, tick_seconds=config.tick_seconds)
    runner = ServiceRunner(definition(config), settings, runner_config(config))
    await run_until_signalled(runner)


def main() -> None:
    """Run billing until SIGTERM/SIGINT (settings: `BillingConfig.from_env`)."""
    asyncio.run(run(BillingConfig.from_env()))


if __name__ == "__main__":
    main()
