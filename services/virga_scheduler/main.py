"""The scheduler's composition root: configuration, Kafka settings, the runner."""

from __future__ import annotations

import asyncio

import structlog

from virga_runtime import ServiceRunner
from virga_runtime.process import configure_logging_from_env, kafka_settings, run_until_signalled
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.service import SERVICE_NAME, definition, runner_config

log = structlog.get_logger(__name__)


async def run(config: SchedulerConfig) -> None:
    configure_logging_from_env(SERVICE_NAME)
    settings = kafka_settings(SERVICE_NAME)
    log.info(
        "configured",
        weigher=config.weigher.value,
        max_attempts=config.max_attempts,
        heartbeat_timeout_seconds=config.heartbeat_timeout_seconds,
    )
    runner = ServiceRunner(definition(config), settings, runner_config(config))
    await run_until_signalled(runner)


def main() -> None:
    """Run the scheduler until SIGTERM/SIGINT (settings: `SchedulerConfig.from_env`)."""
    asyncio.run(run(SchedulerConfig.from_env()))


if __name__ == "__main__":
    main()
