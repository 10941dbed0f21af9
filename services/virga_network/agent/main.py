"""The network agent's composition root: configuration, the driver, the runner."""

from __future__ import annotations

import asyncio

import structlog

from virga_network.agent.config import NetworkAgentConfig
from virga_network.agent.core.model import NetworkAgentState
from virga_network.agent.drivers.base import NetworkDriver
from virga_network.agent.edge import EdgeServer
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

    return NetlinkDriver(prefix=config.prefix, tap_kind=config.tap_kind, host=config.host)


async def run(config: NetworkAgentConfig) -> None:
    configure_logging_from_env(SERVICE_NAME)
    settings = kafka_settings(SERVICE_NAME)
    driver = build_driver(config)
    log.info("network_agent_starting", host=config.host, vtep_ip=config.vtep_ip)
    runner: ServiceRunner[NetworkAgentState] | None = None
    edges = None
    if config.edge and config.driver == "netlink":
        from virga_network.agent.drivers.netlink_edge import edge_sockets

        def state() -> NetworkAgentState:
            assert runner is not None  # effects run only once the runner exists
            return runner.state

        edges = EdgeServer(state, config.edge_settings, edge_sockets)
    try:
        serving = None if edges is None else edges.serve
        runner = ServiceRunner(definition(config, driver, serving), settings, runner_config(config))
        await run_until_signalled(runner)
    except HostLeaseHeld as error:
        raise SystemExit(f"network agent of host {config.host}: {error}") from None
    finally:
        if edges is not None:
            await edges.close()
        await driver.close()


def main() -> None:
    """Run this host's network agent until SIGTERM/SIGINT (see `NetworkAgentConfig.from_env`)."""
    asyncio.run(run(NetworkAgentConfig.from_env()))


if __name__ == "__main__":
    main()
