"""The dead-letter record: a record a service could not use, with the reason, kept verbatim."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson

from virga_eventlog.records import RawRecord


def dead_letter_value(record: RawRecord, reason: str, service: str) -> bytes:
    """Encode `record` and why `service` refused it; the original bytes survive as base64."""
    body: dict[str, Any] = {
        "reason": reason,
        "service": service,
        "source": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
        "dead_lettered_at": datetime.now(UTC),
        "key": record.key.decode("utf-8", "replace") if record.key is not None else None,
        "value_b64": base64.b64encode(record.value).decode() if record.value is not None else None,
    }
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)


def read_dead_letter(value: bytes) -> dict[str, Any]:
    """Decode a dead-letter record (for operators and tests)."""
    body: dict[str, Any] = orjson.loads(value)
    raw = body.get("value_b64")
    body["value"] = base64.b64decode(raw) if raw is not None else None
    return body
