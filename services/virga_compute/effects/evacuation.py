"""An evacuation's effects on a compute host (`core.evacuation`): the destination's rebuild
from the instance's existing disks, and the dead host's removal of its stale domain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from virga_compute.drivers.base import ComputeDriver, DriverError
from virga_compute.effects.intents import Rebuild, RemoveStale
from virga_events.catalog.compute import InstanceRebuildFailed, InstanceRebuilt, InstanceStarted
from virga_runtime.service import EffectHandler, Emit

log = structlog.get_logger(__name__)


def evacuation_handlers(driver: ComputeDriver) -> dict[type[Any], EffectHandler]:
    async def rebuild(effect: Rebuild) -> Sequence[Emit]:
        instance_id = effect.spec.instance_id
        bound = log.bind(instance_id=instance_id, flow_id=effect.flow_id)
        try:
            await driver.spawn(effect.spec)
        except DriverError as exc:
            reason = str(exc)
            try:
                await driver.destroy(instance_id)
            except DriverError as cleanup:
                reason += f" (removing the domain failed too: {cleanup})"
            bound.warning("instance_rebuild_failed", reason=reason)
            failed = InstanceRebuildFailed(
                flow_id=effect.flow_id, step=effect.step, host=effect.host, reason=reason
            )
            return [Emit(failed, instance_id, effect.tenant_id)]
        bound.info("instance_rebuilt", host=effect.host)
        rebuilt = InstanceRebuilt(flow_id=effect.flow_id, step=effect.step, host=effect.host)
        return [
            Emit(InstanceStarted(host=effect.host), instance_id, effect.tenant_id),
            Emit(rebuilt, instance_id, effect.tenant_id),
        ]

    async def remove_stale(effect: RemoveStale) -> Sequence[Emit]:
        # Destroy is idempotent: a domain gone already (or never made here) is no error.
        await driver.destroy(effect.instance_id)
        log.info("evacuated_domain_removed", instance_id=effect.instance_id, host=effect.host)
        return []

    return {Rebuild: rebuild, RemoveStale: remove_stale}
