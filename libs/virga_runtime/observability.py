"""Prometheus metrics, /healthz and /metrics over HTTP, and structlog set-up for a service."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import orjson
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class ServiceMetrics:
    """One registry per runner, so several services can live in one test process."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self._service = service
        labels = ["service"]
        self.events_handled = Counter(
            "virga_events_handled", "Input events decided on", labels, registry=self.registry
        ).labels(service)
        self.events_applied = Gauge(
            "virga_events_applied",
            "Events folded into state since the log began",
            labels,
            registry=self.registry,
        ).labels(service)
        self.events_emitted = Counter(
            "virga_events_emitted",
            "Events appended to the service's topic",
            labels,
            registry=self.registry,
        ).labels(service)
        self.dead_letters = Counter(
            "virga_dead_letters",
            "Records sent to the dead-letter topic",
            labels,
            registry=self.registry,
        ).labels(service)
        self.duplicates = Counter(
            "virga_duplicates",
            "Records dropped as already seen (event_id)",
            labels,
            registry=self.registry,
        ).labels(service)
        self.snapshots = Counter(
            "virga_snapshots", "Snapshots written", labels, registry=self.registry
        ).labels(service)
        self.lag = Gauge(
            "virga_consumer_lag", "Input records not yet handled", labels, registry=self.registry
        ).labels(service)
        self.rebuild_seconds = Gauge(
            "virga_rebuild_seconds",
            "Time from start to caught up",
            labels,
            registry=self.registry,
        ).labels(service)
        self.rebuild_records = Gauge(
            "virga_rebuild_records",
            "Records read while rebuilding",
            labels,
            registry=self.registry,
        ).labels(service)
        self.ready = Gauge(
            "virga_ready", "1 once caught up with the log", labels, registry=self.registry
        ).labels(service)

    def count(self, metric: str, amount: int) -> None:
        """Add `amount` to the counter `virga_<metric>`."""
        counter = getattr(self, metric)
        counter.inc(amount)

    def value(self, metric: str) -> float:
        """Current value of `virga_<metric>` (counters without the _total suffix)."""
        for name in (f"virga_{metric}_total", f"virga_{metric}"):
            sample = self.registry.get_sample_value(name, {"service": self._service})
            if sample is not None:
                return sample
        raise KeyError(metric)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def health_routes(
    app: web.Application,
    is_ready: Callable[[], bool],
    metrics: ServiceMetrics,
    why_not: Callable[[], str] | None = None,
) -> None:
    """Add /healthz (200 only when ready: caught up, by default) and /metrics to `app`;
    `why_not` names what a 503 is waiting for ("rebuilding" when not given)."""

    async def healthz(_: web.Request) -> web.Response:
        if is_ready():
            return web.json_response({"status": "ready"})
        status = why_not() if why_not is not None else "rebuilding"
        return web.json_response({"status": status}, status=503)

    async def metrics_view(_: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)


def _orjson_dumps(obj: object, default: Callable[[object], object] | None = None) -> str:
    return orjson.dumps(obj, default=default).decode()


def configure_logging(service: str, *, json: bool = True, level: int = logging.INFO) -> None:
    """Structured logs: JSON lines in services, with contextvars (correlation_id) merged in."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


async def serve_health(
    host: str,
    port: int,
    is_ready: Callable[[], bool],
    metrics: ServiceMetrics,
    more_routes: Callable[[web.Application], None] | None = None,
) -> tuple[web.AppRunner, int]:
    """A small HTTP server with /healthz, /metrics and `more_routes`; returns it and the port
    it bound."""
    app = web.Application()
    health_routes(app, is_ready, metrics)
    if more_routes is not None:
        more_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    for address in runner.addresses:
        bound = address[1]
    return runner, bound
