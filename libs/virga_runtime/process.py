"""Running a service as an OS process: topics, logging, signals, exit codes."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from virga_eventlog import KafkaSettings, ensure_topics, virga_topics
from virga_runtime.observability import configure_logging
from virga_runtime.runner import ServiceRunner

log = structlog.get_logger(__name__)


async def run_until_signalled(
    runner: ServiceRunner[Any],
    *,
    alongside: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Create Virga's topics, run `runner` until SIGTERM/SIGINT, then stop it gracefully.

    `alongside` runs next to the service (the gateway's HTTP server) and is cancelled at stop.
    """
    await ensure_topics(runner.settings, virga_topics(namespace=runner.settings.namespace))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.request_stop)
    await runner.start()
    extra = asyncio.create_task(alongside()) if alongside is not None else None
    try:
        await runner.serve()
    finally:
        if extra is not None:
            extra.cancel()
            await asyncio.gather(extra, return_exceptions=True)
        await runner.close()
        log.info("stopped")


def configure_logging_from_env(service: str) -> None:
    """Structured logs of `service` on stderr: JSON unless `VIRGA_LOG_FORMAT` says otherwise."""
    configure_logging(service, json=os.environ.get("VIRGA_LOG_FORMAT", "json") == "json")


def kafka_settings(service: str) -> KafkaSettings:
    """`service`'s Kafka settings from the environment (`VIRGA_KAFKA_*`, `VIRGA_NAMESPACE`)."""
    return KafkaSettings.from_env(client_id=f"virga-{service}")
