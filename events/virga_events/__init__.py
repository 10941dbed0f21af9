"""Virga's event schemas: the envelope, the registry of event types, and their codec.

This package depends on nothing else of the project, so consumers in any service (or an
auditor's script) can decode the log with it alone.
"""

# Last: the catalogue registers Virga's own event types in REGISTRY.
from virga_events import catalog
from virga_events.envelope import (
    Envelope,
    decode,
    derived_event_id,
    encode,
    new_event,
    record_hash,
)
from virga_events.errors import (
    EventDecodeError,
    InvalidPayload,
    MalformedRecord,
    UnknownEventType,
    UnsupportedVersion,
)
from virga_events.registry import REGISTRY, Event, EventRegistry, event, upcaster
from virga_events.schema import json_schema

__all__ = [
    "REGISTRY",
    "Envelope",
    "Event",
    "EventDecodeError",
    "EventRegistry",
    "InvalidPayload",
    "MalformedRecord",
    "UnknownEventType",
    "UnsupportedVersion",
    "catalog",
    "decode",
    "derived_event_id",
    "encode",
    "event",
    "json_schema",
    "new_event",
    "record_hash",
    "upcaster",
]
