"""One live agent per host: a lease in the host's own snapshot topic, checked before anything.

Two agents with one host name would each run the host's side effects (two QEMUs on one RBD
disk) while their transactional producers fence each other in turn. So a per-host runner,
before it opens its producer (which would fence a live peer) and long before it decides
anything, reads the lease of its producer name (key ``<producer>/lease`` of its snapshot
topic, which only the host's Kafka user may write):

- no lease, or one released by a clean stop (a tombstone): free;
- a lease whose holder was a process of this machine and pid namespace that no longer
  exists (its pid is gone or belongs to a newer process): free at once, so a crashed
  agent restarts without delay;
- otherwise the runner watches the lease until it would expire (at least half its length,
  whatever the two clocks say): a renewal proves a live peer and the start is refused
  (`HostLeaseHeld`); no renewal means its holder died: free.

Then it claims the lease in a transaction of its own producer and renews it every third of
its length; a claim by another holder between its check and its own claim (two agents
started at once) refuses the later one too. A clean stop writes the tombstone.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from virga_eventlog import (
    EventWriter,
    KafkaSettings,
    LogReader,
    Positions,
    Transaction,
    ensure_topics,
)
from virga_eventlog.topics import HOST_TOPIC_PARTITIONS, TopicSpec, instance_snapshot_spec

if TYPE_CHECKING:
    from virga_runtime.instance import ServiceInstance

log = structlog.get_logger(__name__)

_LIVE: set[str] = set()
"""Lease tokens of runners of this process that have not closed (in-process restarts)."""


class HostLeaseHeld(RuntimeError):
    """Another live agent holds this host: this one must not start."""


def _start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), or None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds a host, as written at each renewal."""

    holder: str
    """A token unique to the holding runner."""
    renewed_at: float
    """Unix time of this renewal, by the holder's clock."""
    seconds: float
    """How long the lease lasts without a renewal."""
    machine: str
    pid_namespace: str
    pid: int
    started: int | None
    """The holder's process start (`/proc/<pid>/stat`), so a reused pid is not taken for it."""

    @classmethod
    def mine(cls, holder: str, seconds: float) -> Lease:
        pid = os.getpid()
        return cls(
            holder,
            time.time(),
            seconds,
            socket.gethostname(),
            _pid_namespace(),
            pid,
            _start_ticks(pid),
        )

    def to_bytes(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_bytes(cls, data: bytes) -> Lease:
        return cls(**orjson.loads(data))

    def holder_gone(self) -> bool:
        """Whether the holder is provably dead: a process of this machine and pid namespace
        that no longer runs (or a runner of this very process that was closed)."""
        if not self.pid_namespace or (self.machine, self.pid_namespace) != (
            socket.gethostname(),
            _pid_namespace(),
        ):
            return False
        if self.pid == os.getpid() and self.started == _start_ticks(self.pid):
            return self.holder not in _LIVE
        return _start_ticks(self.pid) != self.started

    def describe(self) -> str:
        age = max(0.0, time.time() - self.renewed_at)
        return f"pid {self.pid} on {self.machine}, lease renewed {age:.1f} s ago"


class HostLease:
    """The lease of one per-host runner (`producer`, e.g. ``compute@h1``) in `topic`."""

    def __init__(self, settings: KafkaSettings, topic: str, producer: str, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("a host lease lasts a positive number of seconds")
        self.settings, self.topic, self.producer, self.seconds = settings, topic, producer, seconds
        self.key = f"{producer}/lease".encode()
        self.holder = uuid.uuid4().hex
        self._checked: Positions = {}
        self.claimed = False

    @classmethod
    async def checked(cls, instance: ServiceInstance[Any], seconds: float) -> HostLease:
        """The lease of per-host `instance`, once `check` found it free (its topic, and the
        host's event topic, made)."""
        name, settings = instance.definition.name, instance.settings
        spec = instance_snapshot_spec(name, settings.namespace, instance.config.instance)
        events = TopicSpec(instance.output_topic, HOST_TOPIC_PARTITIONS)
        await ensure_topics(settings, [spec, events])
        lease = cls(settings, spec.name, instance.producer_name, seconds)
        await lease.check()
        return lease

    async def take(self, writer: EventWriter, lock: asyncio.Lock) -> asyncio.Task[None]:
        """Claim the lease with `writer` (transactions under `lock`), make sure no one else
        claimed it meanwhile, and return the task that renews it until it is cancelled or
        the producer is fenced."""
        async with lock, writer.transaction() as txn:
            await self.claim(txn)
        await self.check_claim()
        return asyncio.create_task(self._renew(writer, lock), name="lease")

    async def _renew(self, writer: EventWriter, lock: asyncio.Lock) -> None:
        while True:
            await asyncio.sleep(self.seconds / 3)
            async with lock, writer.transaction() as txn:
                await self.claim(txn)

    def _refusal(self, lease: Lease) -> HostLeaseHeld:
        return HostLeaseHeld(
            f"{self.producer} already has a live agent ({lease.describe()}): refusing to start. "
            f"Stop that agent first; if it is gone, its lease expires {lease.seconds:g} s "
            "after its last renewal."
        )

    async def check(self) -> None:
        """Return once no live peer holds the lease; raise `HostLeaseHeld` if one does."""
        async with LogReader(self.settings, [self.topic], client_id=f"{self.producer}-lease") as r:
            ends = await r.end_offsets()
            latest: bytes | None = None
            async for batch in r.read_range({}, ends):
                for record in batch:
                    if record.key == self.key:
                        latest = record.value
            self._checked = dict(ends)
            if latest is None:
                return
            lease = Lease.from_bytes(latest)
            if lease.holder_gone():
                log.info("host_lease_taken_over", producer=self.producer, reason="holder gone")
                return
            remaining = lease.renewed_at + lease.seconds - time.time()
            if remaining <= -lease.seconds:
                return
            # Clocks of two machines may disagree: watch at least half a lease, in which a
            # live holder renews at least once.
            deadline = time.monotonic() + min(lease.seconds, max(remaining, lease.seconds / 2))
            r.seek(ends)
            while (left := deadline - time.monotonic()) > 0:
                for record in await r.read(timeout_ms=int(min(left, 0.5) * 1000) + 1):
                    if record.key != self.key:
                        continue
                    if record.value is None:
                        return  # released by a clean stop
                    raise self._refusal(Lease.from_bytes(record.value))
            log.info("host_lease_taken_over", producer=self.producer, reason="expired")

    async def claim(self, txn: Transaction) -> None:
        """Write this runner's lease inside `txn` (a transaction of its own producer)."""
        _LIVE.add(self.holder)
        self.claimed = True
        await txn.append_raw(self.topic, self.key, Lease.mine(self.holder, self.seconds).to_bytes())

    async def check_claim(self, wait_seconds: float = 30.0) -> None:
        """Refuse if another holder claimed the lease between `check` and our claim."""
        async with (
            LogReader(self.settings, [self.topic], client_id=f"{self.producer}-lease") as r,
            asyncio.timeout(wait_seconds),
        ):
            r.seek(self._checked)
            while True:  # our committed claim becomes readable a moment after the commit
                for record in await r.read(timeout_ms=200):
                    if record.key != self.key or record.value is None:
                        continue
                    lease = Lease.from_bytes(record.value)
                    if lease.holder == self.holder:
                        return
                    raise self._refusal(lease)

    async def release(self, txn: Transaction) -> None:
        """The tombstone of a clean stop: the next agent of this host starts at once."""
        await txn.append_raw(self.topic, self.key, None)

    def closed(self) -> None:
        _LIVE.discard(self.holder)
