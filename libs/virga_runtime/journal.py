"""The operation journal: which decided effects have not recorded their outcome yet.

An input's effects run after its decision committed, beside the decide loop; the agent may
die before their outcome is appended. So the decision's transaction also writes one record
per effect to the instance's own snapshot topic (compacted, one partition, written only by
this instance: `<ns>.snapshots.<service>[.<host>]`), keyed `<producer>/op/<cause>/<index>`,
holding the effect itself; the transaction that appends the outcome drops it (a tombstone).
Both writes are atomic with what they stand for, so after a crash the journal's records are
exactly the operations whose outcome never committed, and the next start carries them out
again, in their order, before anything decided later on their keys. Handlers are idempotent
("already done" is done) and the outcome's event ids derive from (cause, index), so the
outcome is recorded once.

Effects of ticks and readiness are not journaled: readiness plans its own again at each start
(registration, reconciliation), and a tick at its next period.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import structlog

from virga_runtime.effect_codec import decode_effect, encode_effect
from virga_runtime.effects import Operation

log = structlog.get_logger(__name__)


class _Record(msgspec.Struct, frozen=True):
    type: str
    effect: msgspec.Raw
    index: int
    cause_id: str
    correlation_id: str


def journal_prefix(producer: str) -> bytes:
    return f"{producer}/op/".encode()


def journal_key(producer: str, cause_id: str, index: int) -> bytes:
    return journal_prefix(producer) + f"{cause_id}/{index}".encode()


def encode_operation(operation: Operation) -> bytes:
    """The journal value of an operation with a cause; TypeError for an effect the codec
    cannot write back exactly (caught by the services' tests, never silently unjournaled)."""
    assert operation.cause_id is not None
    effect = operation.effect
    body = encode_effect(effect)
    if decode_effect(type(effect), body) != effect:
        raise TypeError(f"effect {type(effect).__name__} does not survive its journal record")
    record = _Record(
        type=type(effect).__name__,
        effect=msgspec.Raw(body),
        index=operation.index,
        cause_id=operation.cause_id,
        correlation_id=operation.correlation_id or "",
    )
    return msgspec.json.encode(record)


def pending_operations(
    records: Mapping[bytes, bytes], producer: str, effect_types: Any
) -> list[Operation]:
    """The journal's operations among an instance's snapshot-topic records (latest value per
    key, tombstones removed, in the order they were written)."""
    by_name = {t.__name__: t for t in effect_types}
    prefix = journal_prefix(producer)
    operations = []
    for key, value in records.items():
        if not key.startswith(prefix):
            continue
        try:
            record = msgspec.json.decode(value, type=_Record)
            effect = decode_effect(by_name[record.type], bytes(record.effect))
        except (msgspec.DecodeError, ValueError, TypeError, KeyError) as exc:
            # Written by another release whose effect this one cannot read: nothing to redo.
            log.error("journal_record_unreadable", key=key.decode(errors="replace"), error=str(exc))
            continue
        operations.append(
            Operation(
                effect=effect,
                index=record.index,
                cause_id=record.cause_id,
                correlation_id=record.correlation_id or None,
                journal_key=key,
            )
        )
    return operations
