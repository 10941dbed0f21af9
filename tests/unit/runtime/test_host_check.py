"""`virga_runtime.hostcheck`: what a host's event topic may hold, checked by every consumer."""

from __future__ import annotations

from dataclasses import dataclass

from virga_eventlog import RawRecord
from virga_eventlog.writer import GENESIS
from virga_events import REGISTRY, Envelope, Event, encode, new_event
from virga_events.catalog.attachments import VolumeAttachmentFailed
from virga_events.catalog.compute import HostHeartbeat, InstanceDeleted, InstanceStopped
from virga_events.catalog.l3 import FloatingIpAssociated, FloatingIpUnplumbed
from virga_events.catalog.network import NetworkAgentRegistered
from virga_events.catalog.scheduler import ClaimReleased
from virga_runtime.hostcheck import SPEAKS_OF, refusal
from virga_runtime.rebuild import fold_own

FAMILIES = ("ns.compute", "ns.network")


def check(
    topic: str, payload: Event, aggregate: str, producer: str, placed: dict[str, str] | None = None
) -> str | None:
    envelope = new_event(payload, aggregate_id=aggregate, tenant_id=None, producer=producer)
    return refusal(topic, envelope, FAMILIES, placed.get if placed is not None else None)


def test_a_hosts_own_events_about_itself_pass() -> None:
    assert check("ns.compute.h1", HostHeartbeat(running=0), "h1", "compute@h1") is None
    stopped = InstanceStopped(host="h1")
    assert check("ns.compute.h1", stopped, "i1", "compute@h1", {"i1": "h1"}) is None
    assert check("ns.compute.h1", stopped, "i1", "compute@h1", {}) is None  # placement unknown
    registered = NetworkAgentRegistered(vtep_ip="192.0.2.1")
    assert check("ns.network.h1", registered, "h1", "network@h1") is None


def test_an_event_about_another_host_is_refused_with_the_reason() -> None:
    reason = check("ns.compute.h1", HostHeartbeat(running=0), "h2", "compute@h1")
    assert reason == "HostHeartbeat about host h2 in ns.compute.h1, the topic of host h1"
    assert check("ns.compute.h1", InstanceStopped(host="h2"), "i1", "compute@h1")
    registered = NetworkAgentRegistered(vtep_ip="192.0.2.1")
    assert check("ns.network.h1", registered, "h2", "network@h1")
    # Only the scheduler writes an InstanceDeleted of no host.
    assert check("ns.compute.h1", InstanceDeleted(host=None), "i1", "compute@h1")


def test_a_producer_naming_another_host_or_a_controllers_event_is_refused() -> None:
    assert check("ns.compute.h1", HostHeartbeat(running=0), "h1", "compute@h2")
    released = ClaimReleased(host="h1", reason="forged")
    assert check("ns.compute.h1", released, "i1", "compute@h1") == (
        "ClaimReleased is no agent's event, yet in ns.compute.h1, the topic of host h1"
    )


def test_an_instance_placed_on_another_host_is_refused() -> None:
    stopped = InstanceStopped(host="h1")
    reason = check("ns.compute.h1", stopped, "i1", "compute@h1", {"i1": "h2"})
    assert reason == (
        "InstanceStopped of instance i1, placed on host h2, in ns.compute.h1, the topic of host h1"
    )
    failed = VolumeAttachmentFailed(instance_id="i1", operation="attach", reason="x")
    assert check("ns.compute.h1", failed, "v1", "compute@h1", {"i1": "h2"})
    assert check("ns.compute.h1", failed, "v1", "compute@h1", {"i1": "h1"}) is None


def test_shared_and_other_topics_are_not_a_hosts() -> None:
    heartbeat = HostHeartbeat(running=0)
    assert check("ns.compute", heartbeat, "h2", "compute@h1") is None
    assert check("ns.scheduler", heartbeat, "h2", "compute@h1") is None


def test_every_event_an_agent_writes_is_in_the_table() -> None:
    """A new agent event must say which host it speaks of, or every consumer refuses it."""
    compute = {cls.TYPE for cls in REGISTRY if cls.__module__ == "virga_events.catalog.compute"}
    attachments = {"VolumeAttached", "VolumeDetached", "VolumeAttachmentFailed"}
    network = {"NetworkAgentRegistered", "PortBound", "PortBindingFailed", "PortUnbound"}
    network |= {"MigrationPortPlumbed", "MigrationPortPlumbingFailed", "MigrationPortSwitched"}
    network |= {"MigrationPortActivated"}
    l3 = {"FloatingIpAssociated", "FloatingIpUnplumbed"}
    assert set(SPEAKS_OF) == compute | attachments | network | l3


def test_a_host_confirms_floating_ips_of_its_own_only_and_never_points_one() -> None:
    """The confirmation of a floating IP's plumbing is a host's; the association itself (what
    an upcast version 1 event says) is the controller's alone."""
    confirmed = FloatingIpAssociated(port_id="p1", host="h1")
    assert check("ns.network.h1", confirmed, "f1", "network@h1") is None
    assert (
        check("ns.network.h1", FloatingIpUnplumbed(port_id="p1", host="h1"), "f1", "network@h1")
        is None
    )
    assert check("ns.network.h1", FloatingIpAssociated(port_id="p1", host="h2"), "f1", "network@h1")
    forged = FloatingIpAssociated(port_id="p1", host="h1", accepted=True)
    assert check("ns.network.h1", forged, "f1", "network@h1") == (
        "FloatingIpAssociated about host None in ns.network.h1, the topic of host h1"
    )


@dataclass(frozen=True)
class Record:
    topic: str
    value: bytes
    partition: int = 0
    offset: int = 0
    key: bytes | None = None
    timestamp: int = 0


def test_a_rebuild_folds_no_forgery_not_even_one_naming_us_as_its_producer() -> None:
    """h1 writes, in its own topic, a heartbeat of h2 claiming to be `compute@h2`: h2's agent,
    folding its family on rebuild, neither folds it nor takes it for the head of its chain."""
    forged = new_event(
        HostHeartbeat(running=9), aggregate_id="h2", tenant_id=None, producer="compute@h2"
    )
    own = new_event(
        HostHeartbeat(running=1), aggregate_id="h2", tenant_id=None, producer="compute@h2"
    )
    batch: list[RawRecord] = [
        Record("ns.compute.h1", encode(forged.chained(7, "x"))),
        Record("ns.compute.h2", encode(own.chained(1, ""))),
    ]
    folded: list[str] = []

    def evolve(state: None, envelope: Envelope) -> None:
        folded.append(envelope.event_id)

    def refuse(record: RawRecord, envelope: Envelope) -> str | None:
        return refusal(record.topic, envelope, FAMILIES)

    _, applied, head = fold_own(batch, REGISTRY, evolve, None, "compute@h2", 0, GENESIS, refuse)
    assert folded == [own.event_id]
    assert applied == 1
    assert head.seq == 1
