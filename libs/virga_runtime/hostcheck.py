"""What a host's event topic may hold: its own agent's events about itself, nothing else.

Each agent writes only `<ns>.<service>.<host>` (`virga_eventlog.topics.host_topic`), and only
its host's Kafka user may write there (`virga_eventlog.acls.host_acls`). So the topic tells
which host wrote a record; what the record says it is about must agree. `refusal` is the one
check every consumer makes, on every record of a host's topic, live (the record is
dead-lettered with the reason) and on rebuild (it is skipped), before anything folds it:

- the event's type is one an agent writes (`SPEAKS_OF`), and its producer is an agent of that
  host (``compute@<host>``);
- the host it speaks of (its `host` field, or its aggregate id for the Host* events) is the
  topic's host;
- an instance the consumer places on another host (`ServiceDefinition.placed_on`) is not
  reported on by this one.

The shared family topics themselves (`<ns>.compute`, written by no one since hosts have their
own; `<ns>.network`, the network controller's) are not checked here: ACLs say who writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from virga_eventlog.topics import family_of
from virga_events import Envelope, EventDecodeError


class ForeignHostEvent(EventDecodeError):
    """A record a host's topic must not hold (`refusal` says why): dead-lettered, never folded."""


HostOf = Callable[[Envelope], str | None]
InstanceOf = Callable[[Envelope], str | None]


def _aggregate(envelope: Envelope) -> str:
    return envelope.aggregate_id


def _field(envelope: Envelope) -> str | None:
    host: str | None = envelope.payload.host
    return host


def _no_host(envelope: Envelope) -> str | None:
    return ANY_HOST


def _none(envelope: Envelope) -> str | None:
    return None


def _instance_field(envelope: Envelope) -> str | None:
    instance: str | None = envelope.payload.instance_id
    return instance


def _confirmation(envelope: Envelope) -> str | None:
    """A host's confirmation of a floating IP's plumbing; one that says it is the acceptance
    too (only a controller's, of version 1, does) speaks of no host an agent may speak of."""
    if getattr(envelope.payload, "accepted", False):
        return None
    return _field(envelope)


ANY_HOST = "*"
"""What an event that names no host (VolumeAttachmentFailed) speaks of: only the placement of
its instance is checked."""

SPEAKS_OF: dict[str, tuple[HostOf, InstanceOf]] = {
    # compute agents (virga_events.catalog.compute, .attachments)
    "HostRegistered": (_aggregate, _none),
    "HostHeartbeat": (_aggregate, _none),
    "UnknownDomainFound": (_aggregate, _none),
    "InstanceStarted": (_field, _aggregate),
    "InstanceStopped": (_field, _aggregate),
    "InstanceRestarted": (_field, _aggregate),
    "InstanceRebooted": (_field, _aggregate),
    "InstanceFailed": (_field, _aggregate),
    "InstanceDeleted": (_field, _aggregate),  # host None is the scheduler's, never an agent's
    "InstanceDomainLost": (_field, _aggregate),
    "UsageSampled": (_field, _aggregate),
    "ConsoleSessionOpened": (_field, _aggregate),
    # A migration's answers name the host that answers; the flow checks it is the one asked
    # (`virga_runtime.flows.Step.accepts`), while the instance is still placed on the source.
    "InstanceMigrated": (_field, _aggregate),
    "InstanceMigrationFailed": (_field, _aggregate),
    # An evacuation's answers come from its destination, counted the instance's host from
    # the fence on (`virga_scheduler.core.evacuation.evacuated_to`).
    "InstanceRebuilt": (_field, _aggregate),
    "InstanceRebuildFailed": (_field, _aggregate),
    # A resize's: its stop comes from the instance's host; its redefinition may come from the
    # host it moves to, before its claim does (the flow takes only the host it asked).
    "InstanceResizeStopped": (_field, _aggregate),
    "InstanceResized": (_field, _none),
    "InstanceResizeFailed": (_field, _none),
    "VolumeAttached": (_field, _instance_field),
    "VolumeDetached": (_field, _instance_field),
    "VolumeAttachmentFailed": (_no_host, _instance_field),
    # network agents (virga_events.catalog.network)
    "NetworkAgentRegistered": (_aggregate, _none),
    "PortBound": (_field, _instance_field),
    "PortBindingFailed": (_field, _instance_field),
    "PortUnbound": (_field, _none),
    "MigrationPortPlumbed": (_field, _none),
    "MigrationPortPlumbingFailed": (_field, _none),
    "MigrationPortSwitched": (_field, _none),
    "MigrationPortActivated": (_field, _none),
    # network agents (virga_events.catalog.l3)
    "FloatingIpAssociated": (_confirmation, _none),
    "FloatingIpUnplumbed": (_field, _none),
}
"""Per event type an agent writes: the host it speaks of, and the instance it is about (None:
none). A type not here is never an agent's: in a host's topic it is refused."""


def refusal(
    topic: str,
    envelope: Envelope,
    families: Iterable[str],
    placed_on: Callable[[str], str | None] | None = None,
) -> str | None:
    """Why `envelope`, read from `topic`, must not be folded; None if it may be (or `topic` is
    not a host's topic of `families`). `placed_on`: the host the consumer places an instance
    on, None if it places it nowhere it knows."""
    member = family_of(topic, families)
    if member is None or not member[1]:
        return None
    host = member[1]
    speaks = SPEAKS_OF.get(envelope.type)
    if speaks is None:
        return f"{envelope.type} is no agent's event, yet in {topic}, the topic of host {host}"
    if envelope.producer.partition("@")[2] != host:
        return f"{envelope.type} produced by {envelope.producer} in {topic}, host {host}'s topic"
    host_of, instance_of = speaks
    about = host_of(envelope)
    if about != ANY_HOST and about != host:
        return f"{envelope.type} about host {about} in {topic}, the topic of host {host}"
    instance = instance_of(envelope)
    if instance is not None and placed_on is not None:
        placement = placed_on(instance)
        if placement is not None and placement != host:
            return (
                f"{envelope.type} of instance {instance}, placed on host {placement}, "
                f"in {topic}, the topic of host {host}"
            )
    return None


def placement_of(state_placed_on: Callable[[Any, str], str | None] | None, state: Any) -> Any:
    """`ServiceDefinition.placed_on` bound to the current `state` (None if it has none)."""
    if state_placed_on is None:
        return None
    return lambda instance: state_placed_on(state, instance)
