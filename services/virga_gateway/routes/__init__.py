"""The route table: every operation of the API, in the order the OpenAPI document lists them."""

from __future__ import annotations

from virga_gateway.routes import (
    billing,
    flavors,
    hosts,
    images,
    instances,
    meta,
    networks,
    ports,
    security_groups,
    server_groups,
    tenants,
    volumes,
)
from virga_gateway.routing import Route

ROUTES: list[Route] = [
    *tenants.ROUTES,
    *flavors.ROUTES,
    *instances.ROUTES,
    *volumes.ROUTES,
    *images.ROUTES,
    *networks.ROUTES,
    *ports.ROUTES,
    *security_groups.ROUTES,
    *server_groups.ROUTES,
    *hosts.ROUTES,
    *billing.ROUTES,
    *meta.ROUTES,
]
