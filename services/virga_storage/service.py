"""The storage service as a Virga service: its topics, fold, decisions, effect handlers and
the upload endpoint on its HTTP port."""

from __future__ import annotations

from functools import partial

from virga_eventlog import KafkaSettings, event_topic
from virga_runtime import RunnerConfig, ServiceDefinition, ServiceRunner
from virga_storage.config import StorageConfig
from virga_storage.core import decide as decisions
from virga_storage.core import snapshot as snapshots
from virga_storage.core.fold import evolve
from virga_storage.core.model import StorageState
from virga_storage.drivers.base import StorageDriver
from virga_storage.effects.fencing import FenceEffects
from virga_storage.effects.images import ImageEffects, UploadClaims
from virga_storage.effects.snapshots import SnapshotEffects
from virga_storage.effects.volumes import VolumeEffects
from virga_storage.upload import ImageUploads

SERVICE_NAME = "storage"


def definition(
    config: StorageConfig, driver: StorageDriver, claims: UploadClaims | None = None
) -> ServiceDefinition[StorageState]:
    """The storage service over `driver` (connected by the caller).

    Reads requests from `<ns>.api`, placements (boot volumes) and evacuations' fences from
    `<ns>.scheduler` and
    instance deletions from `<ns>.compute`; writes `<ns>.storage`. `claims` are shared with
    the upload endpoint of the same process.
    """
    namespace = config.namespace
    image_effects = ImageEffects(driver, claims or UploadClaims())
    return ServiceDefinition(
        name=SERVICE_NAME,
        input_topics=(
            event_topic("gateway", namespace),
            event_topic("scheduler", namespace),
            event_topic("compute", namespace),
        ),
        output_topic=event_topic(SERVICE_NAME, namespace),
        initial_state=StorageState,
        evolve=evolve,
        snapshot=snapshots.snapshot,
        restore=snapshots.restore,
        decide=partial(decisions.decide, config),
        effects={
            **VolumeEffects(driver).handlers(),
            **SnapshotEffects(driver).handlers(),
            **image_effects.handlers(),
            **FenceEffects(driver).handlers(),
        },
        on_ready=decisions.on_ready,
        tick=partial(decisions.tick, config),
    )


def runner_config(config: StorageConfig, uploads: ImageUploads | None = None) -> RunnerConfig:
    return RunnerConfig(
        http_port=config.http_port,
        http_routes=None if uploads is None else uploads.add_routes,
    )


def storage_runner(
    config: StorageConfig, driver: StorageDriver, settings: KafkaSettings
) -> ServiceRunner[StorageState]:
    """The whole service: runner, effects and upload endpoint sharing one driver."""
    claims = UploadClaims()
    uploads = ImageUploads(config, driver, claims)
    runner = ServiceRunner(
        definition(config, driver, claims), settings, runner_config(config, uploads)
    )
    uploads.runner = runner
    return runner
