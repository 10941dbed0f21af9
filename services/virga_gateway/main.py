"""`virga-gateway`: the gateway process, its projection and its HTTP server, until signalled."""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web

from virga_gateway.app import build_app
from virga_gateway.config import GatewayConfig
from virga_gateway.runner import GatewayRunner
from virga_gateway.service import gateway_runner
from virga_runtime.process import configure_logging_from_env, kafka_settings, run_until_signalled

log = structlog.get_logger(__name__)


async def serve_http(runner: GatewayRunner, config: GatewayConfig) -> None:
    """Serve the API until cancelled."""
    http = web.AppRunner(build_app(runner, config), access_log=None)
    await http.setup()
    try:
        await web.TCPSite(http, config.host, config.port).start()
        log.info("listening", host=config.host, port=config.port)
        await asyncio.Event().wait()
    finally:
        await http.cleanup()


def main() -> None:
    configure_logging_from_env("gateway")
    settings = kafka_settings("gateway")
    config = GatewayConfig.from_env()
    runner = gateway_runner(config, settings)
    asyncio.run(run_until_signalled(runner, alongside=lambda: serve_http(runner, config)))


if __name__ == "__main__":
    main()
