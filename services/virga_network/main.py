"""The network controller's composition root: configuration and the runner."""

from __future__ import annotations

import asyncio

from virga_network.config import NetworkConfig
from virga_network.service import SERVICE_NAME, definition, runner_config
from virga_runtime import ServiceRunner
from virga_runtime.process import configure_logging_from_env, kafka_settings, run_until_signalled


async def run(config: NetworkConfig) -> None:
    configure_logging_from_env(SERVICE_NAME)
    settings = kafka_settings(SERVICE_NAME)
    runner = ServiceRunner(definition(config), settings, runner_config(config))
    await run_until_signalled(runner)


def main() -> None:
    """Run the network controller until SIGTERM/SIGINT (see `NetworkConfig.from_env`)."""
    asyncio.run(run(NetworkConfig.from_env()))


if __name__ == "__main__":
    main()
