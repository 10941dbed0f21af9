"""How one instance of a service runs: its `RunnerConfig`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """How one instance of a service runs."""

    instance: str = ""
    """Instance name for services with one process per host (`host-1`); "" for singletons."""
    snapshot_every_events: int = 50_000
    """Write a snapshot after this many applied events..."""
    snapshot_every_seconds: float = 300.0
    """...or after this long, whichever comes first (only if something changed)."""
    http_host: str = "127.0.0.1"
    http_port: int | None = None
    """Port for /healthz and /metrics; None serves nothing, 0 picks a free port."""
    http_routes: Callable[[web.Application], None] | None = field(default=None, compare=False)
    """Adds a service's own routes (the storage service's image uploads) to that server."""
    dedupe_capacity: int = 100_000
    max_batch_records: int = 500
    """Input records decided in one transaction."""
    host_lease_seconds: float = 15.0
    """A per-host instance (`instance` set) holds its host's lease (`virga_runtime.lease`):
    a second one started while it lives refuses to start; after a crash, the lease lapses
    this long after its last renewal (at once for a restart on the same machine)."""
