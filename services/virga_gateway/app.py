"""The aiohttp application: middleware, the route table, health and metrics, typed app state."""

from __future__ import annotations

import msgspec
from aiohttp import web

from virga_gateway.config import GatewayConfig
from virga_gateway.context import GATEWAY, OPENAPI_DOCUMENT, Gateway
from virga_gateway.middleware import request_frame
from virga_gateway.openapi import openapi_document
from virga_gateway.routes import ROUTES
from virga_gateway.routing import add_routes
from virga_gateway.runner import GatewayRunner
from virga_gateway.tokens import token_sha256
from virga_gateway.web import add_web_routes
from virga_runtime import health_routes


def build_app(runner: GatewayRunner, config: GatewayConfig) -> web.Application:
    """The HTTP API over `runner`'s projection; `runner` is started (and served) by the caller."""
    app = web.Application(middlewares=[request_frame], client_max_size=config.max_body_bytes)
    gateway = Gateway(runner, config, token_sha256(config.admin_token))
    app[GATEWAY] = gateway
    app[OPENAPI_DOCUMENT] = msgspec.json.encode(openapi_document(ROUTES))
    add_routes(app, ROUTES)
    health_routes(app, gateway.ready, runner.metrics, gateway.health)
    add_web_routes(app, config.web_root)
    return app
