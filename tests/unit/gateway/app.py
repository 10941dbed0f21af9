"""A gateway app over a runner that is never started: HTTP behaviour without Kafka."""

from __future__ import annotations

from aiohttp import web

from virga_eventlog import KafkaSettings
from virga_gateway.app import build_app
from virga_gateway.config import GatewayConfig
from virga_gateway.runner import GatewayRunner
from virga_gateway.service import gateway_runner

CONFIG = GatewayConfig(admin_token="root-token", token_secret=b"s" * 32, max_body_bytes=1024)


def unstarted() -> tuple[GatewayRunner, web.Application]:
    runner = gateway_runner(CONFIG, KafkaSettings(bootstrap_servers="127.0.0.1:1"))
    return runner, build_app(runner, CONFIG)
