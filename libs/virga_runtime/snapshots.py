"""Service snapshots on the compacted snapshot topic: state + positions, split into chunks."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import structlog

from virga_eventlog import KafkaSettings, LogReader, Transaction

CHUNK_BYTES = 4 * 1024 * 1024
"""Kafka records have a size limit; a big state is written as several keyed chunks."""

log = structlog.get_logger(__name__)

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A service instance's state at a consistent point: after a committed transaction."""

    state: Any
    """The service's `snapshot(state)` value."""
    inputs: dict[str, int]
    """Next offset per input partition (`topic/partition`) folded into `state`."""
    own: dict[str, int]
    """Next offset per partition of the service's own topic folded into `state`."""
    recent_ids: list[str]
    """The dedupe window."""
    chain: tuple[int, str]
    """The producer's hash-chain head (seq, hash)."""
    events_applied: int
    """Events folded since the beginning of the log (for metrics and tests)."""
    state_version: int = 1
    """The service's `state_version` when it wrote `state` (1 for snapshots without one)."""

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "state": self.state,
                "inputs": self.inputs,
                "own": self.own,
                "recent_ids": self.recent_ids,
                "chain": list(self.chain),
                "events_applied": self.events_applied,
                "state_version": self.state_version,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Snapshot:
        raw = orjson.loads(data)
        return cls(
            state=raw["state"],
            inputs=raw["inputs"],
            own=raw["own"],
            recent_ids=raw["recent_ids"],
            chain=(raw["chain"][0], raw["chain"][1]),
            events_applied=raw["events_applied"],
            state_version=raw.get("state_version", 1),
        )


def restore_state(
    snapshot: Snapshot, restore: Callable[[Any], S], state_version: int, instance: str
) -> S | None:
    """The state of `snapshot`, or None when it cannot be used: written for another
    `state_version`, or refused by `restore`. The service then rebuilds from the log, which
    costs time but never correctness, so an upgrade that changes the state's shape starts."""
    if snapshot.state_version != state_version:
        log.warning(
            "snapshot_ignored",
            instance=instance,
            reason=f"state version {snapshot.state_version}, this release reads {state_version}",
        )
        return None
    try:
        return restore(snapshot.state)
    except Exception as error:  # any shape restore cannot read: the log still can
        log.warning("snapshot_ignored", instance=instance, reason=f"restore failed: {error!r}")
        return None


def _manifest_key(instance: str) -> bytes:
    return f"{instance}/manifest".encode()


def _chunk_key(instance: str, index: int) -> bytes:
    return f"{instance}/chunk/{index}".encode()


async def write_snapshot(txn: Transaction, topic: str, instance: str, snapshot: Snapshot) -> int:
    """Send `snapshot` inside `txn` (chunks first, manifest last); return its size in bytes."""
    data = snapshot.to_bytes()
    snapshot_id = str(uuid.uuid4()).encode()
    chunks = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
    for index, chunk in enumerate(chunks):
        await txn.append_raw(topic, _chunk_key(instance, index), snapshot_id + b"\n" + chunk)
    manifest = orjson.dumps({"snapshot_id": snapshot_id.decode(), "chunks": len(chunks)})
    await txn.append_raw(topic, _manifest_key(instance), manifest)
    return len(data)


async def load_snapshot(settings: KafkaSettings, topic: str, instance: str) -> Snapshot | None:
    """The newest complete snapshot of `instance`, or None (then the service rebuilds fully)."""
    return snapshot_of(await read_latest(settings, topic, instance), instance)


async def read_latest(settings: KafkaSettings, topic: str, instance: str) -> dict[bytes, bytes]:
    """The latest value of each of `instance`'s keys on its snapshot topic (tombstones
    dropped), in the order the keys were first written: snapshot chunks, journal records."""
    latest: dict[bytes, bytes] = {}
    prefix = f"{instance}/".encode()
    async with LogReader(settings, [topic], client_id=f"virga-snapshot-{instance}") as reader:
        ends = await reader.end_offsets()
        async for batch in reader.read_range({}, ends):
            for record in batch:
                if record.key is not None and record.key.startswith(prefix):
                    if record.value is None:
                        latest.pop(record.key, None)
                    else:
                        latest[record.key] = record.value
    return latest


def snapshot_of(latest: dict[bytes, bytes], instance: str) -> Snapshot | None:
    """The newest complete snapshot among `read_latest`'s records, or None."""
    manifest_raw = latest.get(_manifest_key(instance))
    if manifest_raw is None:
        return None
    manifest = orjson.loads(manifest_raw)
    wanted_id = manifest["snapshot_id"].encode()
    parts: list[bytes] = []
    for index in range(manifest["chunks"]):
        chunk = latest.get(_chunk_key(instance, index), b"")
        chunk_id, _, body = chunk.partition(b"\n")
        if chunk_id != wanted_id:
            # Compaction or a torn write left a chunk of another snapshot: do not trust it.
            log.warning("snapshot_incomplete", instance=instance, chunk=index)
            return None
        parts.append(body)
    return Snapshot.from_bytes(b"".join(parts))
