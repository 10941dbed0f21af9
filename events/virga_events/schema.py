"""JSON Schema (2020-12) of every registered event, for consumers in other languages."""

from __future__ import annotations

from typing import Any

import msgspec

from virga_events.registry import REGISTRY, EventRegistry

_NULLABLE_STRING = {"type": ["string", "null"]}


def json_schema(registry: EventRegistry = REGISTRY) -> dict[str, Any]:
    """One schema that accepts exactly the envelopes this build writes."""
    types = list(registry)
    payload_schemas, defs = msgspec.json.schema_components(types, ref_template="#/$defs/{name}")
    variants = []
    for cls, payload_schema in zip(types, payload_schemas, strict=True):
        variants.append(
            {
                "title": cls.TYPE,
                "type": "object",
                "required": [
                    "event_id",
                    "type",
                    "version",
                    "aggregate_id",
                    "tenant_id",
                    "occurred_at",
                    "producer",
                    "correlation_id",
                    "causation_id",
                    "payload",
                ],
                "properties": {
                    "event_id": {"type": "string", "minLength": 1},
                    "type": {"const": cls.TYPE},
                    "version": {"const": cls.VERSION},
                    "aggregate_id": {"type": "string", "minLength": 1},
                    "tenant_id": _NULLABLE_STRING,
                    "occurred_at": {"type": "string", "format": "date-time"},
                    "producer": {"type": "string", "minLength": 1},
                    "correlation_id": {"type": "string", "minLength": 1},
                    "causation_id": _NULLABLE_STRING,
                    "seq": {"type": "integer", "minimum": 0},
                    "prev_hash": {"type": "string"},
                    "payload": payload_schema,
                },
            }
        )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://virga.dev/schemas/events.json",
        "title": "Virga event envelope",
        "oneOf": variants,
        "$defs": defs,
    }
