"""A cold resize's steps on this host (`core.resize`), carried out over the driver: the stop,
the redefinition in place or the definition of a guest moved here, the restart of an undo."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from virga_compute.drivers.base import ComputeDriver, DriverError, InstanceNotFound
from virga_compute.effects.intents import MoveIn, Redefine, RestartAfterResize, StopForResize
from virga_events.catalog.compute import (
    InstanceFailed,
    InstanceResized,
    InstanceResizeFailed,
    InstanceResizeStopped,
    InstanceStarted,
)
from virga_runtime.service import EffectHandler, Emit

log = structlog.get_logger(__name__)


def resize_handlers(driver: ComputeDriver) -> dict[type[Any], EffectHandler]:
    async def stop(effect: StopForResize) -> Sequence[Emit]:
        bound = log.bind(instance_id=effect.instance_id, flow_id=effect.flow_id)
        try:
            await driver.stop(effect.instance_id)
        except InstanceNotFound:
            bound.info("resize_stop_of_lost_domain")  # not running, which is what was asked
        except DriverError as exc:
            bound.warning("resize_stop_failed", reason=str(exc))
            failed = InstanceResizeFailed(
                flow_id=effect.flow_id, step=effect.step, host=effect.host, reason=str(exc)
            )
            return [Emit(failed, effect.instance_id, effect.tenant_id)]
        stopped = InstanceResizeStopped(
            flow_id=effect.flow_id, step=effect.step, host=effect.host, was_running=True
        )
        return [Emit(stopped, effect.instance_id, effect.tenant_id)]

    async def redefine(effect: Redefine) -> Sequence[Emit]:
        bound = log.bind(instance_id=effect.instance_id, flow_id=effect.flow_id)
        flavor = effect.flavor
        try:
            await driver.redefine(effect.instance_id, vcpus=flavor.vcpus, ram_mb=flavor.ram_mb)
        except DriverError as exc:
            bound.warning("resize_redefine_failed", reason=str(exc))
            failed = InstanceResizeFailed(
                flow_id=effect.flow_id, step=effect.step, host=effect.host, reason=str(exc)
            )
            return [Emit(failed, effect.instance_id, effect.tenant_id)]
        emits: list[Emit] = []
        running = False
        if effect.start:
            try:
                await driver.start(effect.instance_id)
                running = True
            except DriverError as exc:
                # Resized all the same (the definition is the new one): it is left stopped,
                # with the reason as a failed start, and a start request may try again.
                bound.warning("resize_start_failed", reason=str(exc))
                failed_start = InstanceFailed(host=effect.host, phase="start", reason=str(exc))
                emits.append(Emit(failed_start, effect.instance_id, effect.tenant_id))
        bound.info("instance_resized", vcpus=flavor.vcpus, ram_mb=flavor.ram_mb, running=running)
        resized = InstanceResized(
            flow_id=effect.flow_id,
            step=effect.step,
            host=effect.host,
            flavor=flavor,
            running=running,
        )
        return [Emit(resized, effect.instance_id, effect.tenant_id), *emits]

    async def move_in(effect: MoveIn) -> Sequence[Emit]:
        instance_id = effect.spec.instance_id
        bound = log.bind(instance_id=instance_id, flow_id=effect.flow_id)
        try:
            await driver.spawn(effect.spec, start=effect.start)
        except DriverError as exc:
            reason = str(exc)
            try:
                await driver.destroy(instance_id)  # nothing of it stays here: its old host has it
            except DriverError as cleanup:
                reason += f" (removing the domain failed too: {cleanup})"
            bound.warning("resize_move_failed", host=effect.host, reason=reason)
            failed = InstanceResizeFailed(
                flow_id=effect.flow_id, step=effect.step, host=effect.host, reason=reason
            )
            return [Emit(failed, instance_id, effect.tenant_id)]
        bound.info("instance_resized_here", host=effect.host, running=effect.start)
        resized = InstanceResized(
            flow_id=effect.flow_id,
            step=effect.step,
            host=effect.host,
            flavor=effect.flavor,
            running=effect.start,
        )
        return [Emit(resized, instance_id, effect.tenant_id)]

    async def restart(effect: RestartAfterResize) -> Sequence[Emit]:
        try:
            await driver.start(effect.instance_id)
        except DriverError as exc:
            log.warning("resize_restart_failed", instance_id=effect.instance_id, reason=str(exc))
            failed = InstanceFailed(host=effect.host, phase="start", reason=str(exc))
            return [Emit(failed, effect.instance_id, effect.tenant_id)]
        return [Emit(InstanceStarted(host=effect.host), effect.instance_id, effect.tenant_id)]

    return {
        StopForResize: stop,
        Redefine: redefine,
        MoveIn: move_in,
        RestartAfterResize: restart,
    }
