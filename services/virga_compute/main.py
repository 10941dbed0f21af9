"""The compute agent's composition root: configuration, the real driver, the runner."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from virga_compute.config import ComputeConfig
from virga_compute.console.gate import ConsoleGate
from virga_compute.console.server import ConsoleServer
from virga_compute.drivers.base import ComputeDriver
from virga_compute.drivers.domain_xml import DomainSettings
from virga_compute.service import SERVICE_NAME, definition, runner_config
from virga_runtime import ServiceRunner
from virga_runtime.lease import HostLeaseHeld
from virga_runtime.process import configure_logging_from_env, kafka_settings, run_until_signalled

log = structlog.get_logger(__name__)

MEMORY_URI = "memory://"


def build_driver(config: ComputeConfig) -> ComputeDriver:
    """`memory://` runs instances in process (demos, tests); any other URI is libvirt's."""
    if config.libvirt_uri.startswith(MEMORY_URI):
        from virga_compute.drivers.memory import MemoryComputeDriver

        return MemoryComputeDriver()
    from virga_compute.drivers.libvirt import LibvirtDriver  # libvirt loads only when used

    Path(config.instances_path).mkdir(parents=True, exist_ok=True)
    Path(config.console_log_path).mkdir(parents=True, exist_ok=True)
    try:
        ceph_secret = None if config.ceph is None else config.ceph.secret()
    except ValueError as exc:
        raise SystemExit(f"bad compute agent setting: {exc}") from None
    return LibvirtDriver(
        config.libvirt_uri,
        instances_path=config.instances_path,
        settings=DomainSettings(
            domain_type=config.domain_type,
            config_drive_dir=config.config_drive_path,
            console_log_dir=config.console_log_path,  # and a serial console to open
        ),
        grace_period=config.stop_grace_seconds,
        ceph_secret=ceph_secret,
    )


async def run(config: ComputeConfig) -> None:
    configure_logging_from_env(SERVICE_NAME)
    settings = kafka_settings(SERVICE_NAME)
    driver = build_driver(config)
    await driver.connect()  # no hypervisor: fail now, before anything is read or written
    log.info("hypervisor_connected", host=config.host, uri=config.libvirt_uri)
    gate = None if config.console_port is None else ConsoleGate()
    console: ConsoleServer | None = None
    try:
        runner = ServiceRunner(definition(config, driver, gate), settings, runner_config(config))
        if gate is not None and config.console_port is not None:
            console = ConsoleServer(
                driver,
                gate,
                lambda: runner.state,
                ticket_wait_seconds=config.console_ticket_wait_seconds,
                log_dir=config.console_log_path,
                log_key=config.console_log_key,
            )
            await console.start(config.console_listen, config.console_port)
        await run_until_signalled(runner)
    except HostLeaseHeld as error:
        raise SystemExit(f"compute agent of host {config.host}: {error}") from None
    finally:
        if console is not None:
            await console.stop()
        await driver.close()


def main() -> None:
    """Run the compute agent of this host until SIGTERM/SIGINT (see `ComputeConfig.from_env`)."""
    asyncio.run(run(ComputeConfig.from_env()))


if __name__ == "__main__":
    main()
