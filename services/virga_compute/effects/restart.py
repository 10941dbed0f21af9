"""The restart a guest's restart policy asks for (`core.power`), carried out over the driver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from virga_compute.drivers.base import ComputeDriver, DriverError
from virga_compute.effects.intents import Restart
from virga_events.catalog.compute import InstanceFailed, InstanceRestarted
from virga_runtime.service import EffectHandler, Emit

log = structlog.get_logger(__name__)


def restart_handlers(driver: ComputeDriver) -> dict[type[Any], EffectHandler]:
    async def restart(effect: Restart) -> Sequence[Emit]:
        instance_id = effect.spec.instance_id
        try:
            # Defined: started as it is; gone too: defined again from the log's spec.
            await driver.spawn(effect.spec)
        except DriverError as exc:
            log.warning("restart_failed", instance_id=instance_id, reason=str(exc))
            failed = InstanceFailed(host=effect.host, phase="restart", reason=str(exc))
            return [Emit(failed, instance_id, effect.tenant_id)]
        log.info("instance_restarted", instance_id=instance_id, cause=effect.cause)
        restarted = InstanceRestarted(host=effect.host, cause=effect.cause, policy=effect.policy)
        return [Emit(restarted, instance_id, effect.tenant_id)]

    return {Restart: restart}
