"""The compute agent's effect handlers: spawning, power actions, deletion, usage sampling and
the start-up reconciliation, carried out over the driver (the effects are `effects.intents`).

Each handler drives the hypervisor through a `ComputeDriver` and returns the events that
record the outcome; a failed operation is an `InstanceFailed` event, not an exception. Only
faults that leave the agent unable to know its own host (no hypervisor at start) raise, so
the service stops and is restarted. Every operation is safe to repeat: one cut off by a crash
is carried out again from the runtime's journal, and the driver treats "already done" as done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal

import structlog

from virga_compute.core.reconcile import Expected, Step, plan
from virga_compute.core.spec import InstanceSpec
from virga_compute.drivers.base import DriverError, InstanceNotFound
from virga_compute.drivers.domain_xml import domain_name
from virga_compute.effects.attachments import AttachmentEffects
from virga_compute.effects.intents import (
    AttachVolume,
    Destroy,
    DetachVolume,
    GrowDisk,
    PowerAction,
    Reconcile,
    RegisterHost,
    SampleUsage,
    Spawn,
    SpawnPhase,
)
from virga_events import Event
from virga_events.catalog.attachments import (
    VolumeDetached,
)
from virga_events.catalog.compute import (
    HostRegistered,
    InstanceDeleted,
    InstanceDomainLost,
    InstanceFailed,
    InstanceRebooted,
    InstanceStarted,
    InstanceStopped,
    UnknownDomainFound,
    UsageSampled,
)
from virga_runtime.service import EffectHandler, Emit

log = structlog.get_logger(__name__)


class ComputeEffects(AttachmentEffects):
    """The effect handlers of one agent, over its driver."""

    def handlers(self) -> dict[type[Any], EffectHandler]:
        return {
            RegisterHost: self.register_host,
            Spawn: self.spawn,
            PowerAction: self.power_action,
            Destroy: self.destroy,
            AttachVolume: self.attach_volume,
            DetachVolume: self.detach_volume,
            GrowDisk: self.grow_disk,
            SampleUsage: self.sample_usage,
            Reconcile: self.reconcile,
        }

    async def register_host(self, effect: RegisterHost) -> Sequence[Emit]:
        # No hypervisor, no host to offer: raising stops the agent, to be restarted.
        capacity = await self._driver.capacity()
        registered = HostRegistered(
            rack=effect.rack,
            zone=effect.zone,
            vcpus=capacity.vcpus,
            ram_mb=capacity.ram_mb,
            disk_gb=capacity.disk_gb,
            traits=effect.traits,
            console_endpoint=effect.console_endpoint,
            migration_uri=effect.migration_uri,
            migration_address=effect.migration_address,
            ceph_user=effect.ceph[0] if effect.ceph else None,
            ceph_secret_uuid=effect.ceph[1] if effect.ceph else None,
        )
        log.info("host_registered", host=effect.host, vcpus=capacity.vcpus, ram_mb=capacity.ram_mb)
        return [Emit(registered, effect.host, None)]

    async def spawn(self, effect: Spawn) -> Sequence[Emit]:
        return [await self._spawn(effect.spec, effect.tenant_id, effect.host, effect.phase)]

    async def _spawn(
        self, spec: InstanceSpec, tenant_id: str | None, host: str, phase: SpawnPhase
    ) -> Emit:
        instance_id = spec.instance_id
        try:
            await self._driver.spawn(spec)
        except DriverError as exc:
            reason = str(exc)
            if phase == "spawn":
                # The driver undefines what this call defined, but not a domain an earlier,
                # interrupted attempt left: the instance leaves this host, so nothing may stay.
                try:
                    await self._driver.destroy(instance_id)
                except DriverError as cleanup:
                    reason += f" (removing the domain failed too: {cleanup})"
            log.warning("spawn_failed", instance_id=instance_id, phase=phase, reason=reason)
            return Emit(
                InstanceFailed(host=host, phase=phase, reason=reason), instance_id, tenant_id
            )
        log.info("instance_started", instance_id=instance_id, phase=phase)
        return Emit(InstanceStarted(host=host), instance_id, tenant_id)

    async def power_action(self, effect: PowerAction) -> Sequence[Emit]:
        instance_id, host = effect.instance_id, effect.host
        try:
            if effect.action == "start":
                await self._driver.start(instance_id)
                outcome: Event = InstanceStarted(host=host)
            elif effect.action == "stop":
                try:
                    await self._driver.stop(instance_id)
                except InstanceNotFound:
                    # The domain is gone (the host lost it while the agent was down): the
                    # instance is not running, which is what was asked. Recording it stopped
                    # keeps reconciliation from spawning it again; a start request will.
                    log.info("stop_of_lost_domain", instance_id=instance_id)
                outcome = InstanceStopped(host=host)
            else:
                await self._driver.reboot(instance_id)
                outcome = InstanceRebooted(host=host)
        except DriverError as exc:
            log.warning("power_action_failed", instance_id=instance_id, action=effect.action)
            outcome = InstanceFailed(host=host, phase=effect.action, reason=str(exc))
        return [Emit(outcome, instance_id, effect.tenant_id)]

    async def destroy(self, effect: Destroy) -> Sequence[Emit]:
        try:
            await self._driver.destroy(effect.instance_id)
        except DriverError as exc:
            log.warning("destroy_failed", instance_id=effect.instance_id, reason=str(exc))
            failed = InstanceFailed(host=effect.host, phase="delete", reason=str(exc))
            return [Emit(failed, effect.instance_id, effect.tenant_id)]
        log.info("instance_deleted", instance_id=effect.instance_id)
        detached = VolumeDetached(instance_id=effect.instance_id, host=effect.host)
        return [
            Emit(InstanceDeleted(host=effect.host), effect.instance_id, effect.tenant_id),
            *(Emit(detached, volume_id, effect.tenant_id) for volume_id in effect.volumes),
        ]

    async def sample_usage(self, effect: SampleUsage) -> Sequence[Emit]:
        try:
            samples = await self._driver.usage()
        except DriverError as exc:
            # The period simply goes on: the next tick samples again, over a longer period.
            log.warning("usage_sampling_failed", reason=str(exc))
            return []
        due = {item.instance_id: item for item in effect.due}
        emits = []
        for sample in samples:
            item = due.get(sample.instance_id)
            if item is None:
                continue
            period = 0.0 if item.since is None else (effect.at - item.since).total_seconds()
            usage = UsageSampled(
                host=effect.host,
                period_seconds=max(period, 0.0),
                cpu_time_ns=sample.cpu_time_ns,
                memory_kb=sample.memory_kb,
                disk_read_bytes=sample.disk_read_bytes,
                disk_write_bytes=sample.disk_write_bytes,
                net_rx_bytes=sample.net_rx_bytes,
                net_tx_bytes=sample.net_tx_bytes,
            )
            emits.append(Emit(usage, sample.instance_id, item.tenant_id))
        return emits

    async def reconcile(self, effect: Reconcile) -> Sequence[Emit]:
        # Without the list of domains the agent cannot know its host: raise, stop, restart.
        found = await self._driver.list_instances()
        steps = plan(effect.expected, found, effect.policy, leave_alone=effect.leave_alone)
        expected = {item.spec.instance_id: item for item in effect.expected}
        by_instance: dict[str, list[Step]] = {}
        for step in steps:
            by_instance.setdefault(step.instance_id, []).append(step)

        async def carry_out(instance_steps: list[Step]) -> list[Emit]:
            return [
                await self._step(step, expected.get(step.instance_id), effect.host)
                for step in instance_steps
            ]

        # Instances are independent (a graceful stop may wait a minute); each one's steps
        # stay in order.
        results = await asyncio.gather(*(carry_out(s) for s in by_instance.values()))
        log.info("reconciled", host=effect.host, domains=len(found), steps=len(steps))
        return [emit for emits in results for emit in emits]

    async def _step(self, step: Step, item: Expected | None, host: str) -> Emit:
        instance_id = step.instance_id
        if step.action == "report_unknown" or item is None:
            log.warning("unknown_domain_found", host=host, domain=domain_name(instance_id))
            return Emit(UnknownDomainFound(domain=domain_name(instance_id)), host, None)
        tenant_id = item.tenant_id
        log.warning("reconciling", instance_id=instance_id, action=step.action)
        if step.action == "report_lost":
            return Emit(InstanceDomainLost(host=host), instance_id, tenant_id)
        if step.action == "respawn":
            return await self._spawn(item.spec, tenant_id, host, "restart")
        if step.action == "record_stopped":
            return Emit(InstanceStopped(host=host, cause="found"), instance_id, tenant_id)
        if step.action == "record_running":
            return Emit(InstanceStarted(host=host), instance_id, tenant_id)
        try:
            if step.action == "power_on":
                await self._driver.start(instance_id)
                return Emit(InstanceStarted(host=host), instance_id, tenant_id)
            await self._driver.stop(instance_id)
            return Emit(InstanceStopped(host=host), instance_id, tenant_id)
        except DriverError as exc:
            phase: Literal["restart", "stop"] = "restart" if step.action == "power_on" else "stop"
            failed = InstanceFailed(host=host, phase=phase, reason=str(exc))
            return Emit(failed, instance_id, tenant_id)
