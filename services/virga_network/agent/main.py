"""The network agent's composition root: configuration, the driver, the runner."""

from __future__ import annotations

import asyncio

import structlog

from virga_network.agent.config import NetworkAgentConfig
from virga_network.agent.drivers.base import NetworkDriver
from virga_network.agent.service import SERVICE_NAME, definition, runner_config
from virga_runtime import ServiceRunner
from virga_runtime.lease import HostLeaseHeld
from virga_runtime.process import configure_logging_from_env, kafka_settings, run_until_signalled

log = structlog.get_logger(__name__)


def build_driver(config: NetworkAgentConfig) -> NetworkDriver:
    """The netlink/nftables driver, or the in-memory one (`VIRGA_NETWORK_DRIVER=memory`)."""
    if config.driver == "memory":
        from virga_network.agent.drivers.memory import MemoryNetworkDriver

        return MemoryNetworkDriver(prefix=config.prefix)
    from virga_network.agent.drivers.netlink import NetlinkDriver  # pyroute2 loads only when used

    return NetlinkDriver(prefix=config.prefix, tap_kind=config.tap_kind)


async def run(config: NetworkAgentConfig) -> None:
    configure_logging_from_env(SERVICE_NAME)
    settings = kafka_settings(SERVICE_NAME)
    driver = build_driver(config)
    log.info("network_agent_starting", host=config.host, vtep_ip=config.vtep_ip)
    try:
        runner = ServiceRunner(definition(config, driver), settings, runner_config(config))
        await run_until_signalled(runner)
    except HostLeaseHeld as error:
        raise SystemExit(f"network agent of host {config.host}: {error}") from None
    finally:
        await driver.close()


def main() -> None:
    """Run this host's network agent until SIGTERM/SIGINT (see `NetworkAgentConfig.from_env`)."""
    asyncio.run(run(NetworkAgentConfig.from_env()))


if __name__ == "__main__":
    main()
