"""Running a service as an OS process: topics, logging, signals, exit codes."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from virga_eventlog import KafkaSettings, dead_letter_topic, ensure_topics, virga_topics
from virga_eventlog.replication import check_replication
from virga_runtime.observability import configure_logging
from virga_runtime.runner import ServiceRunner

log = structlog.get_logger(__name__)


async def run_until_signalled(
    runner: ServiceRunner[Any],
    *,
    alongside: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Create Virga's topics, run `runner` until SIGTERM/SIGINT, then stop it gracefully.

    Refuses to start (`UnderReplicated`, a SystemExit naming them) when a topic the service
    uses is replicated less than its settings ask (`virga_eventlog.replication`).
    `alongside` runs next to the service (the gateway's HTTP server) and is cancelled at stop.
    """
    await ensure_topics(runner.settings, virga_topics(namespace=runner.settings.namespace))
    replication = await check_replication(runner.settings, service_topics(runner))
    log.info("replication", factor=replication.factor, min_insync=replication.min_insync)
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


def service_topics(runner: ServiceRunner[Any]) -> list[str]:
    """The topics `runner` reads or writes: its inputs, its own, its snapshots, dead letters.
    (A per-host instance's own snapshot topic is made by its lease in `runner.start`, with the
    same settings; it is checked from the next start on.)"""
    definition = runner.definition
    namespace = runner.settings.namespace
    return [
        *definition.input_topics,
        definition.output_topic,
        runner.snapshot_topic,
        dead_letter_topic(definition.name, namespace),
    ]


def configure_logging_from_env(service: str) -> None:
    """Structured logs of `service` on stderr: JSON unless `VIRGA_LOG_FORMAT` says otherwise."""
    configure_logging(service, json=os.environ.get("VIRGA_LOG_FORMAT", "json") == "json")


def kafka_settings(service: str) -> KafkaSettings:
    """`service`'s Kafka settings from the environment (`VIRGA_KAFKA_*`, `VIRGA_NAMESPACE`)."""
    return KafkaSettings.from_env(client_id=f"virga-{service}")
