"""What a new flavor's request decides, given the projection."""

from __future__ import annotations

from virga_events.catalog import Flavor, api
from virga_gateway.flavors.bodies import CreateFlavor
from virga_gateway.flavors.views import flavor_view
from virga_gateway.outcome import Outcome
from virga_gateway.problems import conflict
from virga_gateway.state import GatewayState
from virga_runtime.service import Emit


def create_flavor(state: GatewayState, body: CreateFlavor) -> Outcome:
    if body.name in state.flavors:
        raise conflict(f"a flavor named {body.name} exists", "name")
    flavor = Flavor(name=body.name, vcpus=body.vcpus, ram_mb=body.ram_mb, disk_gb=body.disk_gb)
    emit = Emit(api.FlavorCreated(flavor=flavor), flavor.name, None)
    return Outcome(201, (emit,), lambda s: flavor_view(s.flavors[flavor.name]))
