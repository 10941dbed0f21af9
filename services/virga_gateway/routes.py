"""The route table: every operation of the API, in the order the OpenAPI document lists them."""

from __future__ import annotations

from virga_gateway.billing import routes as billing
from virga_gateway.consoles import routes as consoles
from virga_gateway.external_networks import routes as external_networks
from virga_gateway.flavors import routes as flavors
from virga_gateway.floating_ips import routes as floating_ips
from virga_gateway.hosts import routes as hosts
from virga_gateway.images import routes as images
from virga_gateway.instances import routes as instances
from virga_gateway.keypairs import routes as keypairs
from virga_gateway.meta import routes as meta
from virga_gateway.networks import routes as networks
from virga_gateway.ports import routes as ports
from virga_gateway.quotas import routes as quotas
from virga_gateway.rebalance import routes as rebalance
from virga_gateway.routers import routes as routers
from virga_gateway.routing import Route
from virga_gateway.security_groups import routes as security_groups
from virga_gateway.server_groups import routes as server_groups
from virga_gateway.stream import routes as stream
from virga_gateway.tenants import routes as tenants
from virga_gateway.volumes import routes as volumes

ROUTES: list[Route] = [
    *tenants.ROUTES,
    *quotas.ROUTES,
    *flavors.ROUTES,
    *instances.ROUTES,
    *consoles.ROUTES,
    *volumes.ROUTES,
    *images.ROUTES,
    *networks.ROUTES,
    *ports.ROUTES,
    *external_networks.ROUTES,
    *floating_ips.ROUTES,
    *routers.ROUTES,
    *security_groups.ROUTES,
    *server_groups.ROUTES,
    *keypairs.ROUTES,
    *hosts.ROUTES,
    *rebalance.ROUTES,
    *billing.ROUTES,
    *stream.ROUTES,
    *meta.ROUTES,
]
