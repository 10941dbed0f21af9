"""The storage service's composition root: configuration, the real driver, the runner."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from virga_runtime.process import configure_logging_from_env, kafka_settings, run_until_signalled
from virga_storage.config import StorageConfig
from virga_storage.drivers.base import StorageDriver
from virga_storage.qemu_img import sandbox_available
from virga_storage.service import SERVICE_NAME, storage_runner

log = structlog.get_logger(__name__)


async def connect_driver(config: StorageConfig) -> StorageDriver:
    """`memory://` keeps volumes in process; anything else is a Ceph conf file."""
    if config.in_memory:
        from virga_storage.drivers.memory import MemoryStorageDriver

        return MemoryStorageDriver(config.ceph_pool)
    from virga_storage.drivers.rbd import RbdDriver  # rados/rbd load only when used

    driver = RbdDriver(
        Path(config.ceph_conf),
        Path(config.ceph_keyring),
        config.ceph_pool,
        user=config.ceph_user,
        op_timeout=config.ceph_op_timeout_seconds,
    )
    await driver.connect()  # no cluster: fail now, before anything is read or written
    return driver


async def run(config: StorageConfig) -> None:
    configure_logging_from_env(SERVICE_NAME)
    settings = kafka_settings(SERVICE_NAME)
    driver = await connect_driver(config)
    log.info("storage_connected", conf=config.ceph_conf, pool=config.ceph_pool)
    try:
        runner = storage_runner(config, driver, settings)
        await run_until_signalled(runner)
    finally:
        await driver.close()


def main() -> None:
    """Run the storage service until SIGTERM/SIGINT (see `StorageConfig.from_env`)."""
    config = StorageConfig.from_env()
    if config.image_sandbox and not sandbox_available():
        raise SystemExit(
            "qemu-img runs sandboxed (VIRGA_IMAGE_SANDBOX=bwrap) but bwrap is not installed: "
            "install Debian's bubblewrap, or set VIRGA_IMAGE_SANDBOX=none"
        )
    asyncio.run(run(config))


if __name__ == "__main__":
    main()
