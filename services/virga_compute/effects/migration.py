"""The `migrate` step of a live migration (`core.migration`), carried out over the driver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from virga_compute.drivers.base import (
    ComputeDriver,
    DriverError,
    InstanceNotFound,
    MigrationOptions,
)
from virga_compute.effects.intents import MigrateLive
from virga_events.catalog.compute import InstanceMigrated, InstanceMigrationFailed
from virga_runtime.service import EffectHandler, Emit

log = structlog.get_logger(__name__)


def migration_handlers(driver: ComputeDriver) -> dict[type[Any], EffectHandler]:
    async def migrate(effect: MigrateLive) -> Sequence[Emit]:
        instance_id = effect.instance_id
        bound = log.bind(instance_id=instance_id, flow_id=effect.flow_id)

        def failed(reason: str) -> Sequence[Emit]:
            bound.warning("instance_migration_failed", reason=reason)
            answer = InstanceMigrationFailed(
                flow_id=effect.flow_id, step=effect.step, host=effect.host, reason=reason
            )
            return [Emit(answer, instance_id, effect.tenant_id)]

        def migrated(seconds: float) -> Sequence[Emit]:
            bound.info("instance_migrated", destination=effect.destination, seconds=seconds)
            answer = InstanceMigrated(
                flow_id=effect.flow_id,
                step=effect.step,
                host=effect.host,
                destination=effect.destination,
                seconds=round(seconds, 3),
            )
            return [Emit(answer, instance_id, effect.tenant_id)]

        options = MigrationOptions(timeout=effect.timeout, destination_ceph=effect.destination_ceph)
        try:
            result = await driver.migrate_live(
                instance_id, effect.destination_uri, effect.migration_address, options=options
            )
        except InstanceNotFound:
            # Gone from here: moved by this very step before a crash cut its answer off (the
            # journal runs it again), or never here. The destination says which.
            try:
                arrived = await driver.runs_at(effect.destination_uri, instance_id)
            except DriverError as exc:
                return failed(f"{instance_id} is not on {effect.host}; {exc}")
            if arrived:
                return migrated(0.0)
            return failed(f"{instance_id} is not on {effect.host} nor on {effect.destination}")
        except DriverError as exc:
            return failed(str(exc))
        return migrated(result.seconds)

    return {MigrateLive: migrate}
