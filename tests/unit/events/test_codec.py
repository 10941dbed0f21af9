"""Decoding is strict and typed: every fault is a named error, never a crash."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from virga_events import (
    Event,
    EventDecodeError,
    EventRegistry,
    InvalidPayload,
    MalformedRecord,
    UnknownEventType,
    UnsupportedVersion,
    decode,
    derived_event_id,
    encode,
    new_event,
)

REGISTRY = EventRegistry()


@REGISTRY.register("VolumeResized", version=3)
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeResized(Event):
    size_gb: int
    reason: str
    attachments: tuple[str, ...] = ()


@REGISTRY.upcaster("VolumeResized", from_version=1)
def _size_mb_to_gb(payload: dict[str, Any]) -> dict[str, Any]:
    return {"size_gb": payload.pop("size_mb") // 1024, **payload}


@REGISTRY.upcaster("VolumeResized", from_version=2)
def _add_reason(payload: dict[str, Any]) -> dict[str, Any]:
    return {"reason": "unknown (written before v3)", **payload}


def envelope_dict(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "e1",
        "type": "VolumeResized",
        "version": 3,
        "aggregate_id": "vol-1",
        "tenant_id": "t1",
        "occurred_at": "2026-11-23T10:00:00Z",
        "producer": "storage",
        "correlation_id": "c1",
        "causation_id": None,
        "seq": 4,
        "prev_hash": "ab",
        "payload": {"size_gb": 20, "reason": "extend"},
    }
    base.update(overrides)
    return base


def raw(**overrides: Any) -> bytes:
    return orjson.dumps(envelope_dict(**overrides))


def test_round_trip_keeps_every_field() -> None:
    original = new_event(
        VolumeResized(size_gb=40, reason="extend", attachments=("i-1",)),
        aggregate_id="vol-1",
        tenant_id="t1",
        producer="storage",
        correlation_id="req-9",
        occurred_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
    ).chained(7, "ff")
    assert decode(encode(original), REGISTRY) == original


def test_correlation_follows_the_cause_and_causation_names_it() -> None:
    cause = new_event(
        VolumeResized(size_gb=1, reason="r"),
        aggregate_id="v",
        tenant_id=None,
        producer="api",
        correlation_id="req-1",
    )
    effect = new_event(
        VolumeResized(size_gb=2, reason="r"),
        aggregate_id="v",
        tenant_id=None,
        producer="storage",
        causation=cause,
    )
    assert effect.correlation_id == "req-1"
    assert effect.causation_id == cause.event_id


def test_old_versions_are_upcast_on_read() -> None:
    v1 = raw(version=1, payload={"size_mb": 20480})
    event = decode(v1, REGISTRY)
    assert event.version == 3
    assert event.payload == VolumeResized(size_gb=20, reason="unknown (written before v3)")


@pytest.mark.parametrize(
    ("record", "error", "fragment"),
    [
        (b"{not json", MalformedRecord, "not JSON"),
        (b"[1, 2]", MalformedRecord, "Expected `object`"),
        (raw(version=1, payload={"size": 1}), InvalidPayload, "upcasting failed: KeyError"),
        (raw(event_id=7), MalformedRecord, "$.event_id"),
        (raw(event_id=""), MalformedRecord, "$.event_id"),
        (raw(occurred_at="yesterday"), MalformedRecord, "$.occurred_at"),
        (raw(occurred_at="2026-11-23T10:00:00"), MalformedRecord, "$.occurred_at"),
        (raw(type="VolumeMelted"), UnknownEventType, "VolumeMelted"),
        (raw(version=4), UnsupportedVersion, "newer"),
        (raw(version="3"), MalformedRecord, "$.version"),
        (raw(seq=-1), MalformedRecord, "$.seq"),
        (raw(payload={"reason": "x"}), InvalidPayload, "size_gb"),
        (raw(payload={"size_gb": "20", "reason": "x"}), InvalidPayload, "$.size_gb"),
        (raw(payload=[1]), InvalidPayload, "Expected `object`"),
        (raw(version=1, payload=[1]), InvalidPayload, "Expected `object`"),
    ],
)
def test_each_fault_is_a_typed_error_that_names_it(
    record: bytes, error: type[EventDecodeError], fragment: str
) -> None:
    with pytest.raises(error) as raised:
        decode(record, REGISTRY)
    assert fragment in raised.value.reason


def test_an_upcaster_gap_is_reported_not_guessed() -> None:
    registry = EventRegistry()

    @registry.register("Thing", version=2)
    @dataclass(frozen=True, slots=True)
    class Thing(Event):
        size_gb: int

    with pytest.raises(UnsupportedVersion, match="no upcaster for Thing from v1"):
        decode(raw(type="Thing", version=1), registry)


def test_a_class_cannot_be_registered_as_two_event_types() -> None:
    with pytest.raises(ValueError, match="already registered as VolumeResized"):
        EventRegistry().register("Other")(VolumeResized)


def test_derived_ids_are_stable_and_distinct() -> None:
    assert derived_event_id("e1", "scheduler", 0) == derived_event_id("e1", "scheduler", 0)
    assert derived_event_id("e1", "scheduler", 0) != derived_event_id("e1", "scheduler", 1)
    assert derived_event_id("e1", "scheduler", 0) != derived_event_id("e1", "compute@h1", 0)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(st.binary())
def test_arbitrary_bytes_never_crash_the_decoder(data: bytes) -> None:
    with contextlib.suppress(EventDecodeError):
        decode(data, REGISTRY)


# Generating nested JSON is slow on a loaded 2-core machine; the property, not the speed of
# generating its inputs, is what this test is about.
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.sampled_from(list(envelope_dict())), json_values))
def test_arbitrary_envelope_fields_never_crash_the_decoder(fields: dict[str, Any]) -> None:
    with contextlib.suppress(EventDecodeError):
        decode(orjson.dumps(envelope_dict(**fields)), REGISTRY)


@given(st.integers(min_value=0, max_value=2**40), st.text(min_size=1), st.sampled_from([1, 2, 3]))
def test_every_old_version_upcasts_to_a_valid_current_event(
    size: int, reason: str, version: int
) -> None:
    payloads: dict[int, dict[str, Any]] = {
        1: {"size_mb": size},
        2: {"size_gb": size},
        3: {"size_gb": size, "reason": reason},
    }
    payload = payloads[version]
    event = decode(raw(version=version, payload=payload), REGISTRY)
    assert isinstance(event.payload, VolumeResized)
    assert event.version == 3
