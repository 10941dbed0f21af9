"""The cross-service invariants behind `virga audit check`: a pure fold of every topic's facts
into one small model of the cloud, and the checks run on it.

The model is the auditor's own, written from the event contracts rather than borrowed from
the services' states: a service that folds its own facts wrongly would otherwise vouch for
itself. Facts are folded in event time (``occurred_at``), whatever topic they came from. Only
the allocation ratios a host has before any admin sets some are the scheduler's own: they are
its configuration (`virga_scheduler.config`), not a fact in the log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from virga_audit.flow_claims import FLOW_FACTS, FlowModel, flow_findings, fold_flow
from virga_events import Envelope
from virga_events.catalog import api, compute, l3, network, scheduler, storage
from virga_events.catalog.common import Flavor
from virga_scheduler.config import SchedulerConfig

Kind = Literal[
    "overcommitted",
    "address-reused",
    "missing-volume",
    "missing-port",
    "orphaned",
    "stuck",
    "over-quota",
    "leaked-claim",
    "undrained",
]
Status = Literal["BUILDING", "RUNNING", "STOPPED", "ERROR", "DELETING", "DELETED"]

Ratios = tuple[float, float, float]
"""(cpu, ram, disk) allocation ratios."""

_REASONED = (
    compute.InstanceFailed,
    scheduler.InstanceSchedulingFailed,
    storage.VolumeFailed,
    network.PortAllocationFailed,
    network.PortBindingFailed,
)
"""Failures carrying a reason: after one, an instance waiting in a transition is explained."""


_INSTANCE_FACTS = (
    api.InstanceRequested,
    api.InstanceActionRequested,
    api.InstanceDeletionRequested,
    scheduler.InstanceScheduled,
    scheduler.InstanceSchedulingFailed,
    scheduler.ClaimReleased,
    compute.InstanceStarted,
    compute.InstanceStopped,
    compute.InstanceRebooted,
    compute.InstanceRestarted,
    compute.InstanceFailed,
    compute.InstanceDeleted,
    compute.InstanceDomainLost,
)
"""Facts whose aggregate is an instance."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant, with the resource it is about."""

    kind: Kind
    resource: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.resource}: {self.detail}"


@dataclass(slots=True)
class _Instance:
    status: Status = "BUILDING"
    since: datetime | None = None
    """When it entered `status`."""
    image: str | None = None
    network: str | None = None
    delete_on_termination: bool = True
    last_at: datetime | None = None
    last_reason: str | None = None
    """Reason of the newest fact about it, when that fact is a failure."""


@dataclass(slots=True)
class _Port:
    network: str
    mac: str
    ips: tuple[str, ...]
    instance: str | None


@dataclass(slots=True)
class _Volume:
    instance: str | None


def configured_ratios(scheduler: SchedulerConfig | None = None) -> Ratios:
    """The ratios of every host until an admin sets others: those the `scheduler` runs with
    (`SchedulerConfig.ratios`), its defaults without one."""
    ratios = (scheduler or SchedulerConfig()).ratios
    return (ratios.cpu, ratios.ram, ratios.disk)


@dataclass(slots=True)
class CloudModel:
    """What `check` needs to know of every service, folded from all topics."""

    default_ratios: Ratios = field(default_factory=configured_ratios)
    """Ratios of a host while no AllocationRatiosSet names it or ``*``: the scheduler's."""
    capacity: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    """Host -> (vcpus, ram_mb, disk_gb) it registered."""
    ratios: dict[str, Ratios] = field(default_factory=dict)
    """Host, or ``*`` for every host without its own -> (cpu, ram, disk)."""
    claims: dict[str, tuple[str, Flavor]] = field(default_factory=dict)
    """Instance -> (host, flavor) the scheduler holds for it."""
    instances: dict[str, _Instance] = field(default_factory=dict)
    ports: dict[str, _Port] = field(default_factory=dict)
    """Live ports (allocated, not deleted)."""
    volumes: dict[str, _Volume] = field(default_factory=dict)
    """Live volumes (created, not deleted)."""
    public_ips: dict[tuple[str, str], str] = field(default_factory=dict)
    """(external network, address) -> the floating IP or router holding it."""
    flows: FlowModel = field(default_factory=FlowModel)
    """Flows (live migrations): the destination claims they hold, and whether they end."""
    violations: list[Violation] = field(default_factory=list)
    """Found while folding: a moment's overcommit or reuse, even if later undone."""

    def instance(self, instance_id: str) -> _Instance:
        return self.instances.setdefault(instance_id, _Instance())


def fold(model: CloudModel, envelope: Envelope) -> CloudModel:
    """Fold one fact; types no invariant needs pass through."""
    event, key, at = envelope.payload, envelope.aggregate_id, envelope.occurred_at
    about = _instance_of(envelope)
    if about is not None:
        record = model.instance(about)
        record.last_at = at
        record.last_reason = event.reason if isinstance(event, _REASONED) else None
    match event:
        case compute.HostRegistered():
            model.capacity[key] = (event.vcpus, event.ram_mb, event.disk_gb)
        case api.AllocationRatiosSet():
            model.ratios[key] = (event.cpu, event.ram, event.disk)
        case scheduler.InstanceScheduled():
            model.claims[key] = (event.host, event.flavor)
            _check_host(model, event.host, key)
        case scheduler.ClaimReleased():
            if model.claims.get(key, ("",))[0] == event.host:
                del model.claims[key]
        case api.InstanceRequested():
            record = model.instance(key)
            record.image, record.network = event.image, event.network
            record.delete_on_termination = event.delete_on_termination
            _enter(record, "BUILDING", at)
        case compute.InstanceStarted() | compute.InstanceRebooted() | compute.InstanceRestarted():
            _enter(model.instance(key), "RUNNING", at)
        case compute.InstanceStopped():
            _enter(model.instance(key), "STOPPED", at)
        case scheduler.InstanceSchedulingFailed() | compute.InstanceDomainLost():
            _enter(model.instance(key), "ERROR", at)
        case api.InstanceDeletionRequested():
            _enter(model.instance(key), "DELETING", at)
        case compute.InstanceDeleted():
            _enter(model.instance(key), "DELETED", at)
        case network.PortAllocated():
            port = _Port(event.network_id, event.mac.lower(), event.ips, event.instance_id)
            _check_addresses(model, key, port)
            model.ports[key] = port
        case network.PortDeleted():
            model.ports.pop(key, None)
        case l3.FloatingIpAllocated():
            _hold_public_ip(model, key, event.external_network_id, event.ip)
        case l3.RouterCreated():
            _hold_public_ip(model, key, event.external_network_id, event.external_ip)
        case l3.FloatingIpReleased() | l3.RouterDeleted():
            held = [k for k, holder in model.public_ips.items() if holder == key]
            for public_ip in held:
                del model.public_ips[public_ip]
            if isinstance(event, l3.RouterDeleted):
                prefix = l3.snat_port_id(key, "")
                for snat_port in [p for p in model.ports if p.startswith(prefix)]:
                    del model.ports[snat_port]
        case l3.RouterInterfaceAdded(snat_ip=snat_ip) if snat_ip:
            # The router's SNAT port holds its MAC and address as a port does.
            snat = _Port(event.network_id, event.snat_mac.lower(), (snat_ip,), None)
            snat_id = l3.snat_port_id(key, event.network_id)
            _check_addresses(model, snat_id, snat)
            model.ports[snat_id] = snat
        case l3.RouterInterfaceRemoved():
            model.ports.pop(l3.snat_port_id(key, event.network_id), None)
        case storage.VolumeCreated():
            model.volumes[key] = _Volume(event.instance_id)
        case storage.VolumeDeleted():
            model.volumes.pop(key, None)
        case scheduler.MigrationDestinationClaimed():
            fold_flow(model.flows, envelope, model.claims)
            _check_host(model, event.host, key)
        case _ if isinstance(event, FLOW_FACTS):
            fold_flow(model.flows, envelope, model.claims)
        case _:
            pass
    return model


def _instance_of(envelope: Envelope) -> str | None:
    """The instance a fact is about: its aggregate, or the instance a port or volume serves."""
    event = envelope.payload
    if isinstance(event, network.PortAllocationFailed | network.PortBindingFailed):
        return event.instance_id
    return envelope.aggregate_id if isinstance(event, _INSTANCE_FACTS) else None


def _enter(record: _Instance, status: Status, at: datetime) -> None:
    if record.status == "DELETED":
        return  # nothing comes back from deletion
    if record.status != status:
        record.status, record.since = status, at
    elif record.since is None:
        record.since = at


def _check_host(model: CloudModel, host: str, instance_id: str) -> None:
    capacity = model.capacity.get(host)
    if capacity is None:
        return  # placed before its registration was folded: nothing to compare yet
    # As the scheduler: the host's own ratios, else the default an admin set, else its config.
    ratios = model.ratios.get(host, model.ratios.get("*", model.default_ratios))
    flavors = [f for h, f in model.claims.values() if h == host] + model.flows.on_host(host)
    used = (
        sum(f.vcpus for f in flavors),
        sum(f.ram_mb for f in flavors),
        sum(f.disk_gb for f in flavors),
    )
    for name, have, allowed, ratio in zip(
        ("vcpus", "ram_mb", "disk_gb"), used, capacity, ratios, strict=True
    ):
        if have > allowed * ratio:
            model.violations.append(
                Violation(
                    "overcommitted",
                    host,
                    f"{name} {have} claimed > {allowed} x {ratio:g} when {instance_id} was placed",
                )
            )


def _check_addresses(model: CloudModel, port_id: str, port: _Port) -> None:
    for other_id, other in model.ports.items():
        if other_id == port_id or other.network != port.network:
            continue
        if other.mac == port.mac:
            model.violations.append(
                Violation(
                    "address-reused",
                    port_id,
                    f"MAC {port.mac} is also port {other_id}'s in network {port.network}",
                )
            )
        for ip in set(port.ips) & set(other.ips):
            model.violations.append(
                Violation(
                    "address-reused",
                    port_id,
                    f"IP {ip} is also port {other_id}'s in network {port.network}",
                )
            )


def _hold_public_ip(model: CloudModel, holder: str, external_network: str, ip: str) -> None:
    other = model.public_ips.get((external_network, ip))
    if other is not None and other != holder:
        model.violations.append(
            Violation(
                "address-reused",
                holder,
                f"public IP {ip} is also {other}'s in external network {external_network}",
            )
        )
    model.public_ips[(external_network, ip)] = holder


def check(model: CloudModel, now: datetime, stuck_after: timedelta) -> list[Violation]:
    """Every invariant broken in `model` as of `now` (found while folding, then at the end)."""
    found = list(model.violations)
    found += [Violation(*finding) for finding in flow_findings(model.flows, now, stuck_after)]
    volumes_of: dict[str, list[str]] = {}
    for volume_id, volume in model.volumes.items():
        if volume.instance is not None:
            volumes_of.setdefault(volume.instance, []).append(volume_id)
    ports_of: dict[str, list[str]] = {}
    for port_id, port in model.ports.items():
        if port.instance is not None:
            ports_of.setdefault(port.instance, []).append(port_id)
    for instance_id, record in sorted(model.instances.items()):
        if record.status == "RUNNING":
            if record.image is not None and not volumes_of.get(instance_id):
                found.append(
                    Violation(
                        "missing-volume",
                        instance_id,
                        f"RUNNING without a boot volume (image {record.image})",
                    )
                )
            if record.network is not None and not ports_of.get(instance_id):
                found.append(
                    Violation(
                        "missing-port",
                        instance_id,
                        f"RUNNING without a port on network {record.network}",
                    )
                )
        settled = record.since is not None and now - record.since > stuck_after
        if record.status == "DELETED" and settled:
            kept = volumes_of.get(instance_id, []) if record.delete_on_termination else []
            for what, ids in (("volume", kept), ("port", ports_of.get(instance_id, []))):
                for resource in ids:
                    found.append(
                        Violation(
                            "orphaned",
                            resource,
                            f"{what} of {instance_id}, deleted at {_time(record.since)}",
                        )
                    )
        if record.status in ("BUILDING", "DELETING") and record.last_reason is None:
            last = record.last_at or record.since
            if last is not None and now - last > stuck_after:
                found.append(
                    Violation(
                        "stuck",
                        instance_id,
                        f"{record.status} since {_time(record.since)}, "
                        f"no event since {_time(last)}",
                    )
                )
    return found


def _time(moment: datetime | None) -> str:
    return "?" if moment is None else moment.isoformat()


def fold_all(envelopes: Iterable[Envelope], scheduler: SchedulerConfig | None = None) -> CloudModel:
    """A model of every fact, folded in event time (then by producer and its chain seq), of a
    cloud whose scheduler runs with `scheduler` (its defaults if None)."""
    model = CloudModel(default_ratios=configured_ratios(scheduler))
    for envelope in sorted(envelopes, key=lambda e: (e.occurred_at, e.producer, e.seq)):
        fold(model, envelope)
    return model
