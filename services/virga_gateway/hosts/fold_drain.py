"""How a host's drain folds into the projection: DRAINING from the request (HostDrainRequested,
written with the HostDisabled before it), its instances and their migrations from the
scheduler's flows (`host-drain`, and each `live-migration` whose `drain` input names it),
DRAINED or FAILED from its end (HostDrained, HostDrainFailed).

`GatewayState.drain_flows` maps the drain's flow id and its running migrations' to the host,
so a flow's end (keyed by its flow id) finds the host; an entry goes when its flow ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from virga_events import Envelope
from virga_events.catalog import api, flows, scheduler
from virga_gateway.hosts.fold import host_record
from virga_gateway.hosts.model import Drain
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

HOST_DRAIN = "host-drain"
"""`FlowStarted.definition` of the scheduler's drains (its subject is the host)."""

folds: Folds[GatewayState] = Folds()


def _drain_of(state: GatewayState, name: str, flow_id: str) -> Drain:
    host = host_record(state, name)
    if host.drain is None or host.drain.id != flow_id:
        host.drain = Drain(id=flow_id)
    state.drain_flows[flow_id] = name
    return host.drain


@folds.on(api.HostDrainRequested)
def _requested(state: GatewayState, env: Envelope, event: api.HostDrainRequested) -> None:
    host = host_record(state, env.aggregate_id)
    if host.drain is None or host.drain.status != "DRAINING":
        _drain_of(state, env.aggregate_id, event.flow_id)


@folds.on(flows.FlowStarted)
def _started(state: GatewayState, env: Envelope, event: flows.FlowStarted) -> None:
    if event.definition == HOST_DRAIN:
        drain = _drain_of(state, event.subject, env.aggregate_id)
        drain.instances = [i for i in event.inputs.get("instances", "").split(",") if i]
        drain.stopped = [i for i in event.inputs.get("stopped", "").split(",") if i]
        return
    drain_id = event.inputs.get("drain", "")
    if not drain_id or event.inputs.get("by") == "rebalance":
        return  # not a drain's migration (a rebalance's names its rebalance in `drain`)
    # The drain's own start is on another partition and may come later: the migration names
    # its host (`source`) too.
    name = state.drain_flows.get(drain_id, event.inputs.get("source", ""))
    host = state.hosts.get(name)
    if host is None or (host.drain is not None and host.drain.id != drain_id):
        return  # a late event of an older drain
    drain = _drain_of(state, name, drain_id)
    if drain.status == "DRAINING" and event.subject not in drain.moving:
        drain.moving.append(event.subject)
        state.drain_flows[env.aggregate_id] = name


def _ended(
    state: GatewayState, env: Envelope, event: flows.FlowCompleted | flows.FlowFailed
) -> None:
    name = state.drain_flows.pop(env.aggregate_id, None)
    host = state.hosts.get(name) if name is not None else None
    drain = host.drain if host is not None else None
    if drain is None or drain.id == env.aggregate_id or event.subject not in drain.moving:
        return  # not a drain's migration, or the drain itself (its own end says more)
    drain.moving.remove(event.subject)
    done = drain.moved if isinstance(event, flows.FlowCompleted) else drain.unmoved
    if event.subject not in done:
        done.append(event.subject)


folds.add(flows.FlowCompleted, _ended)
folds.add(flows.FlowFailed, _ended)


def _end(
    state: GatewayState, env: Envelope, event: scheduler.HostDrained | scheduler.HostDrainFailed
) -> None:
    host = host_record(state, env.aggregate_id)
    if host.drain is None or host.drain.id != event.flow_id:
        return
    drain = host.drain
    drain.moving = []
    drain.moved, drain.stopped = list(event.moved), list(event.stopped)
    if isinstance(event, scheduler.HostDrainFailed):
        drain.status, drain.unmoved, drain.reason = "FAILED", list(event.unmoved), event.reason
    else:
        drain.status, drain.unmoved = "DRAINED", []


folds.add(scheduler.HostDrained, _end)
folds.add(scheduler.HostDrainFailed, _end)
