"""The compute agent's decisions: pure functions of its state, an event or the time.

Decisions are taken for a whole batch of input events before any of its effects has run, so
the state can lag behind the hypervisor by the batch's own effects: a stop may be decided
while the spawn before it is still to come. That is why power actions go to the driver
whatever the last known status is (the effects of one instance run in order, and the driver
treats "already so" as done), and why only one event may spawn an instance: the one that
completes its prerequisites (placement, boot volume, port binding; see `core.model`).

A boot volume or port that cannot be made fails the instance for good (InstanceFailed with
phase `volume` or `port`): the scheduler then releases its claim and does not try another host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime, timedelta

from virga_compute.config import ComputeConfig
from virga_compute.core.attach import (
    decide_attachment,
    decide_growth,
    growths_to_retell,
    volume_disk,
)
from virga_compute.core.evacuation import (
    decide_claim_moved,
    decide_rebuild_request,
    rebuild_failed,
    stale,
)
from virga_compute.core.migration import decide_migration
from virga_compute.core.model import ComputeState, InstanceRecord, PortBinding
from virga_compute.core.reconcile import Expected
from virga_compute.core.resize import RESIZE_STEPS, decide_resize, moves_in, restart_when_bound
from virga_compute.core.spec import ConfigDrive, InstanceSpec, NicSpec
from virga_compute.effects.intents import (
    Destroy,
    MoveIn,
    PowerAction,
    Rebuild,
    Reconcile,
    RegisterHost,
    SampleUsage,
    Spawn,
    UsageDue,
)
from virga_events import Envelope
from virga_events.catalog.api import InstanceActionRequested, InstanceDeletionRequested
from virga_events.catalog.attachments import VolumeAttachRequested, VolumeDetachRequested
from virga_events.catalog.compute import HostHeartbeat, InstanceDeleted, InstanceFailed
from virga_events.catalog.network import PortAllocationFailed, PortBindingFailed, PortBound
from virga_events.catalog.scheduler import (
    InstanceMigrationRequested,
    InstanceRebuildRequested,
    InstanceRedefineRequested,
    InstanceScheduled,
    MigrationClaimMoved,
)
from virga_events.catalog.storage import (
    VolumeCreated,
    VolumeExtended,
    VolumeFailed,
    boot_volume_id,
)
from virga_runtime.service import Emit, Intent


def build_spec(config: ComputeConfig, state: ComputeState, record: InstanceRecord) -> InstanceSpec:
    """The driver's spec of an instance, from what the log says about it.

    The boot volume (`volume-<instance id>`, when it boots from an image) is `vda`, attached
    volumes follow at the targets they were attached at, and the port's binding gives the
    NIC's MAC and tap; a config drive, when asked for, tells the host's zone. Raises
    ValueError for a spec the driver would refuse, or a prerequisite the log does not have
    yet.
    """
    disks = []
    if record.image is not None:
        disks.append(volume_disk(config, boot_volume_id(record.instance_id), "vda"))
    for volume_id, target in sorted(record.attachments.items(), key=lambda item: item[1]):
        disks.append(volume_disk(config, volume_id, target))
    nics = []
    if record.port_id is not None:
        binding = state.bound_ports.get(record.port_id)
        if binding is None:
            raise ValueError(f"port {record.port_id} is not bound on {state.host}")
        nics.append(guest_nic(state, binding))
    return InstanceSpec(
        instance_id=record.instance_id,
        name=record.name,
        vcpus=record.vcpus,
        ram_mb=record.ram_mb,
        disks=tuple(disks),
        nics=tuple(nics),
        boot=config.direct_boot,
        config_drive=_config_drive(config, record),
    )


def _config_drive(config: ComputeConfig, record: InstanceRecord) -> ConfigDrive | None:
    if not record.config_drive:
        return None
    return ConfigDrive(
        availability_zone=config.zone,
        hostname=record.hostname,
        key_name=record.key_name,
        public_keys=record.public_keys,
        user_data=record.user_data,
        project_id=record.tenant_id,
    )


def guest_nic(state: ComputeState, binding: PortBinding) -> NicSpec:
    """The NIC of a bound port, with the address (IPv4 first) its guest configures itself."""
    network = state.networks.get(binding.network_id)
    if network is None or not binding.ips:
        return NicSpec(mac=binding.mac, tap=binding.tap)
    cidr, gateway = network
    subnet = ipaddress.ip_network(cidr)
    ips = sorted(binding.ips, key=lambda ip: ipaddress.ip_address(ip).version)
    address = next((ip for ip in ips if ipaddress.ip_address(ip) in subnet), None)
    if address is None:
        return NicSpec(mac=binding.mac, tap=binding.tap)
    return NicSpec(
        mac=binding.mac,
        tap=binding.tap,
        address=f"{address}/{subnet.prefixlen}",
        gateway=gateway or None,
    )


def decide(config: ComputeConfig, state: ComputeState, envelope: Envelope) -> Sequence[Intent]:
    """What to do about one new input event; `state` already includes it."""
    event = envelope.payload
    if isinstance(event, InstanceScheduled):
        return _placed(config, state, envelope, event)
    if isinstance(event, VolumeCreated):
        return _provided(config, state, envelope, event.instance_id)
    if isinstance(event, PortBound | PortBindingFailed) and event.host != state.host:
        return ()  # every host's bindings pass by: only this host's concern it
    if isinstance(event, PortBound):
        owner = _port_owner(state, envelope.aggregate_id)
        record = None if owner is None else state.mine(owner)
        binding = state.bound_ports.get(envelope.aggregate_id)
        if record is not None and record.status != "building" and binding is not None:
            fresh = binding.event_id == envelope.event_id
            return restart_when_bound(state, record) if fresh else ()
        return _provided(config, state, envelope, owner)
    if isinstance(event, VolumeFailed):
        return _prerequisite_failed(state, _boot_volume_owner(state, envelope.aggregate_id))
    if isinstance(event, PortAllocationFailed | PortBindingFailed):
        return _prerequisite_failed(state, _port_owner(state, envelope.aggregate_id))
    if isinstance(event, VolumeAttachRequested | VolumeDetachRequested):
        return decide_attachment(config, state, envelope, event)
    if isinstance(event, VolumeExtended):
        return decide_growth(state, envelope.aggregate_id, event.size_gb)
    if isinstance(event, InstanceActionRequested):
        return _action(config, state, envelope, event)
    if isinstance(event, InstanceMigrationRequested):
        return decide_migration(config, state, envelope)
    if isinstance(event, InstanceRebuildRequested):
        answer = decide_rebuild_request(state, envelope)
        record = state.mine(envelope.aggregate_id)
        if answer is not None or record is None:
            return answer or ()
        return _spawn_if_ready(config, state, record)  # as a placement: `Rebuild` once ready
    if isinstance(event, MigrationClaimMoved):
        return decide_claim_moved(state, envelope)
    if isinstance(event, InstanceRedefineRequested) and moves_in(state, event):
        record = state.mine(envelope.aggregate_id)
        if record is not None and record.scheduled_event_id == envelope.event_id:
            return _spawn_if_ready(config, state, record)  # as a placement: `MoveIn` once ready
    if isinstance(event, RESIZE_STEPS):
        return decide_resize(state, envelope)
    if isinstance(event, InstanceDeletionRequested):
        record = state.mine(envelope.aggregate_id)
        # Only the request that started the deletion destroys: a repeated request while one
        # is under way adds nothing.
        if record is not None and record.deletion_event_id == envelope.event_id:
            volumes = tuple(sorted({*record.attachments, *record.attaching}))
            return [Destroy(record.instance_id, record.tenant_id, state.host, volumes)]
    return ()


def _boot_volume_owner(state: ComputeState, volume_id: str) -> str | None:
    """This host's instance whose boot volume it would be (by the derived id)."""
    for record in state.instances.values():
        if boot_volume_id(record.instance_id) == volume_id:
            return record.instance_id
    return None


def _port_owner(state: ComputeState, port_id: str) -> str | None:
    """This host's instance whose port it is (by the derived id, whatever the event says)."""
    for record in state.instances.values():
        if record.port_id == port_id:
            return record.instance_id
    return None


def _failed(state: ComputeState, record: InstanceRecord) -> Sequence[Intent]:
    """InstanceFailed for good if a prerequisite it still waits for has failed (for an
    evacuation's rebuild: InstanceRebuildFailed, so its flow undoes its steps at once)."""
    failure = state.failure(record)
    if failure is None:
        return ()
    phase, reason = failure
    if record.instance_id in state.rebuilding:  # an evacuation's: its flow hears why
        return [rebuild_failed(state, record, reason)]
    failed = InstanceFailed(host=state.host, phase=phase, reason=reason)  # type: ignore[arg-type]
    return [Emit(failed, record.instance_id, record.tenant_id)]


def _spawn_if_ready(
    config: ComputeConfig, state: ComputeState, record: InstanceRecord
) -> Sequence[Intent]:
    rebuild = state.rebuilding.get(record.instance_id)
    if state.missing(record):
        return _failed(state, record)  # else: wait for the next prerequisite's event
    try:
        spec = build_spec(config, state, record)
    except ValueError as exc:
        if rebuild is not None:
            return [rebuild_failed(state, record, f"invalid instance: {exc}")]
        failed = InstanceFailed(host=state.host, phase="spawn", reason=f"invalid instance: {exc}")
        return [Emit(failed, record.instance_id, record.tenant_id)]
    if rebuild is not None and record.resize_flavor is not None:
        flavor, start = record.resize_flavor, record.resize_ran
        return [MoveIn(spec, record.tenant_id, state.host, *rebuild, flavor, start)]
    if rebuild is not None:
        return [Rebuild(spec, record.tenant_id, state.host, *rebuild)]
    return [Spawn(spec, record.tenant_id, state.host)]


def _provided(
    config: ComputeConfig, state: ComputeState, envelope: Envelope, instance_id: str | None
) -> Sequence[Intent]:
    """A boot volume was made or a port bound: spawn if that was the last thing missing."""
    record = None if instance_id is None else state.mine(instance_id)
    if record is None or record.status != "building" or record.deletion_event_id is not None:
        return ()
    if not state.provided_by(record, envelope.event_id) or state.missing(record):
        return ()  # a repeated report, or still waiting for something else
    return _spawn_if_ready(config, state, record)


def _prerequisite_failed(state: ComputeState, instance_id: str | None) -> Sequence[Intent]:
    record = None if instance_id is None else state.mine(instance_id)
    if record is None or record.deletion_event_id is not None:
        return ()  # not ours, or being deleted anyway
    return _failed(state, record)


def _placed(
    config: ComputeConfig, state: ComputeState, envelope: Envelope, event: InstanceScheduled
) -> Sequence[Intent]:
    if event.host != state.host:
        return ()
    instance_id = envelope.aggregate_id
    deleted = Emit(InstanceDeleted(host=state.host), instance_id, envelope.tenant_id)
    record = state.mine(instance_id)
    if record is None:
        # Placed after its deletion (a late duplicate): never spawn, but say it is gone so
        # the scheduler releases this placement's claim.
        return [deleted] if instance_id in state.deleted else ()
    if record.scheduled_event_id != envelope.event_id:
        return ()  # a duplicate of the placement that made the record
    if record.deletion_event_id is not None:
        return [deleted]  # the deletion overtook the placement: nothing to build
    return _spawn_if_ready(config, state, record)


def _action(
    config: ComputeConfig, state: ComputeState, envelope: Envelope, event: InstanceActionRequested
) -> Sequence[Intent]:
    record = state.mine(envelope.aggregate_id)
    if record is None or record.deletion_event_id is not None:
        return ()  # another host's instance, or one on its way out
    if event.action == "start" and record.domain_lost:
        try:
            spec = build_spec(config, state, record)
        except ValueError as exc:
            failed = InstanceFailed(host=state.host, phase="start", reason=str(exc))
            return [Emit(failed, record.instance_id, record.tenant_id)]
        return [Spawn(spec, record.tenant_id, state.host, phase="start")]
    return [PowerAction(record.instance_id, record.tenant_id, state.host, event.action)]


def _due(last: datetime | None, now: datetime, interval: float) -> bool:
    return last is None or now - last >= timedelta(seconds=interval)


def tick(config: ComputeConfig, state: ComputeState, now: datetime) -> Sequence[Intent]:
    """Heartbeat and usage sampling, each when its interval has passed since the last one.

    The last times come from the agent's own events, so the cadence survives restarts. Half
    a tick of slack keeps a tick that comes a little early (event times are taken after the
    tick's `now`) from skipping a whole interval.
    """
    slack = config.tick_seconds / 2
    intents: list[Intent] = []
    if _due(state.heartbeat_at, now, config.heartbeat_seconds - slack):
        intents.append(Emit(HostHeartbeat(running=state.running()), state.host, None))
    running = [
        record
        for record in state.instances.values()
        if record.status == "running" and not record.domain_lost
    ]
    if running and _due(state.usage_sampled_at, now, config.usage_seconds - slack):
        due = tuple(UsageDue(r.instance_id, r.tenant_id, r.usage_since) for r in running)
        intents.append(SampleUsage(state.host, now, due))
    return intents


def on_ready(config: ComputeConfig, state: ComputeState) -> Sequence[Intent]:
    """At each start, once caught up: register the host, then reconcile its domains.

    Instances still waiting for a boot volume or port are left alone (their event spawns
    them), unless what they wait for has failed meanwhile: that failure is reported now, as
    a crash may have cut the decision off. So are those Virga is acting on (a deletion, a
    power request or a restart awaiting its outcome), as `core.power` leaves them.
    """
    expected: list[Expected] = []
    leave_alone: list[str] = []
    failures: list[Intent] = []
    for record in state.instances.values():
        busy = (
            record.actions
            or record.restarting
            or record.migration_flow is not None
            or record.resize_flow is not None
        )
        if record.deletion_event_id is not None or busy:
            # Virga is acting on it (its journal resumes the deletion, power action,
            # restart, live migration or resize): that outcome records its state. Reconciled too, a
            # guest the resumed stop had just forced off was recorded stopped a second time
            # ("found").
            leave_alone.append(record.instance_id)
            continue
        if state.missing(record):
            leave_alone.append(record.instance_id)
            if record.status == "building":
                failures.extend(_failed(state, record))
            continue
        try:
            spec = build_spec(config, state, record)
        except ValueError as exc:
            # E.g. Ceph is no longer configured here: one never built leaves for another
            # host; one that ran is left as it is, as reconciling it needs its spec.
            leave_alone.append(record.instance_id)
            if record.status == "building":
                reason = f"invalid instance: {exc}"
                failed = InstanceFailed(host=state.host, phase="spawn", reason=reason)
                failures.append(Emit(failed, record.instance_id, record.tenant_id))
            continue
        expected.append(
            Expected(
                spec=spec,
                tenant_id=record.tenant_id,
                should_run=record.status != "stopped",
                lost=record.domain_lost,
            )
        )
    return [
        RegisterHost(
            config.host,
            config.rack,
            config.zone,
            config.traits,
            config.console_endpoint,
            config.migration_uri,
            config.migration_address,
            _ceph_identity(config),
        ),
        *stale(state),
        Reconcile(
            config.host,
            config.restart_policy,
            tuple(expected),
            (*leave_alone, *state.evacuated),
        ),
        *failures,
        *growths_to_retell(state),
    ]


def _ceph_identity(config: ComputeConfig) -> tuple[str, str] | None:
    """The cephx user and secret UUID this host's guests open their volumes with."""
    ceph = config.ceph
    if ceph is None or ceph.user is None or ceph.secret_uuid is None:
        return None
    return ceph.user, ceph.secret_uuid
