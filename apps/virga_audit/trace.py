"""`trace`: one resource's events and the causal trees of the requests that touched it."""

from __future__ import annotations

from datetime import datetime

import orjson

from virga_audit.log import event_topics, read_topics
from virga_eventlog import KafkaSettings
from virga_events import REGISTRY, Envelope, EventDecodeError, EventRegistry, decode


def _decoded(value: bytes | None, registry: EventRegistry) -> Envelope | None:
    if value is None:
        return None
    try:
        return decode(value, registry)
    except EventDecodeError:
        return None  # `verify` reports these; a trace shows what can be read


def order_key(envelope: Envelope) -> tuple[datetime, int, str, str]:
    """Event time, then the producer's seq (several events of one decision share a time)."""
    return (envelope.occurred_at, envelope.seq, envelope.producer, envelope.event_id)


async def trace(
    settings: KafkaSettings, resource_id: str, registry: EventRegistry = REGISTRY
) -> list[Envelope]:
    """Every event about `resource_id`, and every event sharing a correlation_id with one of
    them, across all event topics, in `order_key` order.

    Two passes over the log: the first finds the correlations, the second collects their
    events, so memory holds only the answer.
    """
    topics = await event_topics(settings)
    needle = orjson.dumps(resource_id)[1:-1]  # as it appears inside an encoded envelope
    correlations: set[str] = set()
    async for batch in read_topics(settings, topics):
        for record in batch:
            # A cheap byte test first: most records are about something else.
            if record.value is None or needle not in record.value:
                continue
            envelope = _decoded(record.value, registry)
            if envelope is not None and envelope.aggregate_id == resource_id:
                correlations.add(envelope.correlation_id)
    if not correlations:
        return []
    found: dict[str, Envelope] = {}
    async for batch in read_topics(settings, topics):
        for record in batch:
            envelope = _decoded(record.value, registry)
            if envelope is None or envelope.event_id in found:
                continue
            if envelope.aggregate_id == resource_id or envelope.correlation_id in correlations:
                found[envelope.event_id] = envelope
    return sorted(found.values(), key=order_key)
