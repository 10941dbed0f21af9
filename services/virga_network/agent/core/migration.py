"""A live migration's network steps on this host (the scheduler's flow,
`virga_scheduler.core.migration`, says which step comes when).

* `plumb` (MigrationPortPlumbRequested to the destination): the destination plumbs the
  instance's ports as the guest will use them there (the same tap name, its bridge and VXLAN,
  its filters, the edge's lease) *without binding them*: no PortBound, so the port's binding,
  every other host's forwarding and its floating IP stay on the source. Once every port is
  made, MigrationPortPlumbed; a port that cannot be made, MigrationPortPlumbingFailed.
* `switch_port` (MigrationPortSwitchRequested): the controller, the one owner of a port's host,
  assigns the ports to the destination (PortHostAssigned), and everything follows from that as
  for any move: the destination binds (PortBound: every host's VXLAN forwarding and tunnel
  filters follow), the source unplugs (PortUnbound), the floating IP's NAT and gratuitous ARP
  move with the controller's new acceptance. The destination answers MigrationPortSwitched once
  its fold holds every port bound here; a re-sent request is answered again.
  The request comes only once the guest runs on the destination (after InstanceMigrated), and
  the controller's answer to it is certain (it assigns an instance's port to the request's
  host), so every agent follows the request itself at once (`moved`), not the controller's
  PortHostAssigned and the destination's PortBound a few hops later: the destination binds,
  the source unplugs, every other host forwards the guest's MAC to the destination and accepts
  it (only its MAC and addresses) only from there. That lasts while the log assigns the port
  to the request's source or destination (the controller's PortHostAssigned agrees), until the
  flow ends or a later migration of the instance asks its own switch; any other assignment of
  the controller's wins. A migration that fails sends no switch request: the
  source's binding stays (the destination activates nothing before the guest runs there).
* Activation, before the switch: the destination's agent watches the taps it plumbed (`arrivals`)
  and, at the guest's first frame there (QEMU announces a migrated guest's MAC as it takes
  over, once the migration can no more fail), writes MigrationPortActivated; every agent
  follows it as it follows the switch request (`moved`), without waiting for InstanceMigrated,
  which the source's agent writes only once libvirt's migration call returned (a second or
  more later), nor for the scheduler's and the controller's hops after it. The destination
  reports PortBound only once the controller assigned it the port: the controller stays the
  one owner of a port's host, and the scheduler and the gateway take a host's word about an
  instance only once it is placed there (`virga_runtime.hostcheck`).
* `unplumb` (MigrationPortUnplumbRequested, the flow's compensation): the destination's
  plumbing goes at the next convergence, unless a port is bound there by then.

Pure: `prepared`, `moved`, `arrivals` and `answers` read the fold; the fold of the requests
and answers is here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from virga_events import Envelope
from virga_events.catalog.flows import FlowCompleted, FlowFailed
from virga_events.catalog.network import (
    MigrationPortActivated,
    MigrationPortPlumbed,
    MigrationPortPlumbingFailed,
    MigrationPortSwitched,
)
from virga_events.catalog.scheduler import (
    MigrationPortPlumbRequested,
    MigrationPortSwitchRequested,
    MigrationPortUnplumbRequested,
)
from virga_network.agent.core.model import MigrationRecord, NetworkAgentState, PortRecord
from virga_runtime.folding import Folds

ENDED_LIMIT = 4096
"""Ended flows remembered, so that their events folded late (another topic) change nothing."""

REQUESTS = (
    MigrationPortPlumbRequested,
    MigrationPortSwitchRequested,
    MigrationPortUnplumbRequested,
)
"""The scheduler's requests to the network agents (`<ns>.scheduler`)."""
SWITCH = MigrationPortSwitchRequested
"""The request every host follows at once, not only the one it names (`moved`)."""

AnswerKind = Literal["plumbed", "switched"]


@dataclass(frozen=True, slots=True)
class MigrationAnswer:
    """An answer due from this host: `ports` are the instance's, all made (or bound) here."""

    flow_id: str
    instance_id: str
    tenant_id: str | None
    kind: AnswerKind
    ports: tuple[str, ...]
    request: int = 1
    """Which request of the step it answers (1: the first; a re-sent one is answered again)."""


def _ports_of(state: NetworkAgentState, instance_id: str) -> list[PortRecord]:
    return sorted(
        (p for p in state.ports.values() if p.instance_id == instance_id and not p.deleted),
        key=lambda p: p.port_id,
    )


def _known(state: NetworkAgentState, instance_id: str, ports: list[PortRecord]) -> bool:
    """Whether the instance's ports are all known here: an instance that asked for a network
    has its port, once this agent has read it (the topics are folded in no set order)."""
    instance = state.instances.get(instance_id)
    return bool(ports) or instance is None or instance.network is None


def _plumbing(state: NetworkAgentState, record: MigrationRecord) -> bool:
    """Whether this host is to hold the instance's ports plumbed, unbound, for `record`."""
    return record.destination == state.host and record.plumb_requests > 0 and not record.unplumbed


def prepared(state: NetworkAgentState) -> dict[str, str]:
    """Ports to plumb here, unbound, for a migration coming here: port id -> flow id. (A port
    the log assigns here is planned as any other, not as one of these.)"""
    wanted: dict[str, str] = {}
    for flow_id, record in sorted(state.migrations.items()):
        if _plumbing(state, record):
            for port in _ports_of(state, record.instance_id):
                if port.host != state.host:
                    wanted[port.port_id] = flow_id
    return wanted


@dataclass(frozen=True, slots=True)
class Arrival:
    """A migration coming here whose guest has not shown up yet: its taps, all plumbed here."""

    flow_id: str
    instance_id: str
    tenant_id: str | None
    taps: tuple[str, ...]
    source: str
    """Where the log assigns the instance's ports (the host the guest leaves)."""


def moved(state: NetworkAgentState) -> dict[str, str]:
    """Ports whose guest moved (activated on the destination, or the switch requested) while
    the log assigns them to the host it left or (the controller agreeing) the destination:
    port id -> the host the guest runs on now, also before the destination's PortBound is
    folded here."""
    where: dict[str, str] = {}
    for record in state.migrations.values():
        if record.superseded or not record.destination:
            continue
        # Only the host asked to plumb activates: where the guest runs now.
        if not (record.activated == record.destination or record.switch_requests > 0):
            continue
        for port in _ports_of(state, record.instance_id):
            if port.host in (record.source, record.destination):
                where[port.port_id] = record.destination
    return where


def arrivals(state: NetworkAgentState, prepared_taps: dict[str, str]) -> tuple[Arrival, ...]:
    """The migrations coming here to watch for their guest, given the ports planned here
    unbound (`prepared_taps`: port id -> tap): plumbed, neither activated nor switched yet."""
    due: list[Arrival] = []
    for flow_id, record in sorted(state.migrations.items()):
        if not _plumbing(state, record) or record.activated or record.switch_requests:
            continue
        ports = _ports_of(state, record.instance_id)
        if ports and all(p.port_id in prepared_taps for p in ports):
            taps = tuple(prepared_taps[p.port_id] for p in ports)
            source = ports[0].host or ""
            due.append(Arrival(flow_id, record.instance_id, record.tenant_id, taps, source))
    return tuple(due)


def answers(state: NetworkAgentState, planned: Iterable[str]) -> tuple[MigrationAnswer, ...]:
    """The answers due from this host, given the ports its plan plumbs (`planned`): plumbed
    once every port of the instance is planned here, switched once every one is bound here
    (its PortBound folded back)."""
    here = set(planned)
    due: list[MigrationAnswer] = []
    for flow_id, record in sorted(state.migrations.items()):
        if record.destination != state.host:
            continue
        ports = _ports_of(state, record.instance_id)
        ids = tuple(p.port_id for p in ports)
        plumb_due = _plumbing(state, record) and record.plumb_requests > record.plumb_answers
        known = _known(state, record.instance_id, ports)
        if plumb_due and known and all(port_id in here for port_id in ids):
            due.append(
                MigrationAnswer(
                    flow_id, record.instance_id, record.tenant_id, "plumbed", ids,
                    record.plumb_answers + 1,
                )
            )  # fmt: skip
        if (
            record.switch_requests > record.switch_answers
            and known
            and all(p.host == state.host and p.bound_host == state.host for p in ports)
        ):
            due.append(
                MigrationAnswer(
                    flow_id, record.instance_id, record.tenant_id, "switched", ids,
                    record.switch_answers + 1,
                )
            )  # fmt: skip
    return tuple(due)


# -- the fold ---------------------------------------------------------------------------------


def _record(state: NetworkAgentState, envelope: Envelope, flow_id: str) -> MigrationRecord | None:
    """The flow's record (made by whichever of its events comes first); None once it ended."""
    if flow_id in state.ended_flows:
        return None
    record = state.migrations.get(flow_id)
    if record is None:
        record = MigrationRecord(envelope.aggregate_id, envelope.tenant_id)
        state.migrations[flow_id] = record
    return record


def _on(change: Callable[[MigrationRecord, Any], None]) -> Callable[..., None]:
    """The fold of a request or answer: `change` its flow's record."""

    def fold(state: NetworkAgentState, envelope: Envelope, event: Any) -> None:
        record = _record(state, envelope, event.flow_id)
        if record is not None:
            change(record, event)

    return fold


def _plumb_requested(record: MigrationRecord, event: MigrationPortPlumbRequested) -> None:
    record.destination, record.plumb_requests = event.host, record.plumb_requests + 1


def _plumb_answered(record: MigrationRecord, event: Any) -> None:
    record.plumb_answers += 1


def _unplumb_requested(record: MigrationRecord, event: MigrationPortUnplumbRequested) -> None:
    record.destination, record.unplumbed = event.host, True


def _switch_requested(
    state: NetworkAgentState, envelope: Envelope, event: MigrationPortSwitchRequested
) -> None:
    """The latest switch of an instance is where its guest runs (the instance's requests are
    in order on their topic): an earlier flow's, not yet ended here, says nothing more."""
    record = _record(state, envelope, event.flow_id)
    if record is None:
        return
    for flow_id, other in state.migrations.items():
        if other.instance_id == record.instance_id and flow_id != event.flow_id:
            other.superseded = True
    record.destination, record.source = event.host, event.source
    record.switch_requests += 1


def _activated(record: MigrationRecord, event: MigrationPortActivated) -> None:
    """Only the host asked to plumb activates: another host's word is kept only while the
    request naming the destination is not folded yet (`moved` checks it then), and never
    replaces the destination's own."""
    if record.destination and event.host != record.destination:
        return
    if record.destination and record.activated == record.destination:
        return
    record.activated = event.host
    record.source = record.source or event.source  # the switch's, if folded first


def _switch_answered(record: MigrationRecord, event: MigrationPortSwitched) -> None:
    record.switch_answers += 1


def _ended(state: NetworkAgentState, envelope: Envelope, event: FlowCompleted | FlowFailed) -> None:
    """A flow that ended forgets its record (its unbound plumbing goes with it), except one
    stuck after its pivot: the guest may be on the destination, so its taps stay."""
    flow_id = envelope.aggregate_id
    if isinstance(event, FlowFailed) and event.stuck:
        return
    state.migrations.pop(flow_id, None)
    state.ended_flows.pop(flow_id, None)
    state.ended_flows[flow_id] = None
    while len(state.ended_flows) > ENDED_LIMIT:
        del state.ended_flows[next(iter(state.ended_flows))]


def register(folds: Folds[NetworkAgentState]) -> None:
    """Add the migration steps' events to the agent's fold."""
    folds.add(MigrationPortPlumbRequested, _on(_plumb_requested))
    folds.add(MigrationPortPlumbed, _on(_plumb_answered))
    folds.add(MigrationPortPlumbingFailed, _on(_plumb_answered))
    folds.add(MigrationPortUnplumbRequested, _on(_unplumb_requested))
    folds.add(MigrationPortSwitchRequested, _switch_requested)
    folds.add(MigrationPortActivated, _on(_activated))
    folds.add(MigrationPortSwitched, _on(_switch_answered))
    folds.add(FlowCompleted, _ended)
    folds.add(FlowFailed, _ended)
