"""What host actions and allocation ratio requests decide, given the projection."""

from __future__ import annotations

from virga_events.catalog import api
from virga_gateway import validation as v
from virga_gateway.hosts.bodies import HostAction, SetAllocationRatios
from virga_gateway.hosts.model import Host
from virga_gateway.hosts.views import HostView, host_view, ratios_view
from virga_gateway.outcome import Outcome
from virga_gateway.problems import conflict, not_found
from virga_gateway.state import GatewayState
from virga_runtime.service import Emit


def host_action(state: GatewayState, name: str, body: HostAction, flow_id: str) -> Outcome:
    """Disable, enable or drain the host; a drain is the scheduler's flow `flow_id`."""
    host = state.hosts.get(name)
    if host is None or not host.registered:
        raise not_found("host", name)
    if body.action == "drain":
        return _drain(host, body, flow_id)
    event: api.HostDisabled | api.HostEnabled = (
        api.HostDisabled(reason=body.reason) if body.action == "disable" else api.HostEnabled()
    )
    return Outcome(202, (Emit(event, name, None),), lambda s: host_view(s, s.hosts[name]))


def _drain(host: Host, body: HostAction, flow_id: str) -> Outcome:
    """HostDisabled, then HostDrainRequested; a drain already running is the answer to a
    repeated request (nothing written)."""
    name = host.name

    def view(s: GatewayState) -> HostView:
        return host_view(s, s.hosts[name])

    if host.drain is not None and host.drain.status == "DRAINING":
        return Outcome(202, (), view)
    if host.state == "down":
        raise conflict(f"host {name} is down: its instances cannot be live-migrated", "action")
    disabled = api.HostDisabled(reason=body.reason or "drained")
    drain = api.HostDrainRequested(flow_id=flow_id)
    return Outcome(202, (Emit(disabled, name, None), Emit(drain, name, None)), view)


def set_allocation_ratios(state: GatewayState, body: SetAllocationRatios) -> Outcome:
    scope = body.host or "*"
    if body.host is not None:
        host = state.hosts.get(body.host)
        v.check(host is not None and host.registered, "host", f"no host {body.host}")
    event = api.AllocationRatiosSet(cpu=body.cpu, ram=body.ram, disk=body.disk)
    return Outcome(
        200,
        (Emit(event, scope, None),),
        lambda s: ratios_view(scope, s.allocation_ratios[scope]),
    )
