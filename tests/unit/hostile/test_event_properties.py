"""Properties of the event codec over Virga's real catalogue: round trips for every registered
type, typed errors for whatever else a topic may hold, upcasting that settles.

(tests/unit/events/test_codec.py covers arbitrary bytes and envelope fields on a test
registry; here every event type of `virga_events.REGISTRY` is exercised.)
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import virga_events.catalog  # noqa: F401  (registers the catalogue)
from virga_events import (
    REGISTRY,
    Event,
    EventDecodeError,
    EventRegistry,
    InvalidPayload,
    UnsupportedVersion,
    decode,
    encode,
    new_event,
)

EVENT_TYPES = list(REGISTRY)
INT64 = st.integers(-(2**63), 2**63 - 1)


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    """Values of `hint` as the event types use them (tz-aware times, finite floats)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is bool:
        return st.booleans()
    if hint is int:
        return INT64
    if hint is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if hint is str:
        return st.text(max_size=40)
    if hint is datetime:
        return st.datetimes(timezones=st.just(UTC))
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(st.none() if a is type(None) else strategy_for(a) for a in args))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(strategy_for(args[0]), max_size=3).map(tuple)
    if origin is dict:
        return st.dictionaries(strategy_for(args[0]), strategy_for(args[1]), max_size=3)
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        fields = {f.name: strategy_for(hints[f.name]) for f in dataclasses.fields(hint)}
        return st.builds(hint, **fields)  # type: ignore[arg-type]
    raise NotImplementedError(f"no strategy for {hint!r}: teach strategy_for this type")


def test_every_field_type_of_the_catalogue_has_a_strategy() -> None:
    assert len(EVENT_TYPES) > 20
    for cls in EVENT_TYPES:
        strategy_for(cls)


events = st.sampled_from(EVENT_TYPES).flatmap(strategy_for)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.text(min_size=1, max_size=20), st.none() | st.text(max_size=20))
def test_every_event_type_round_trips(payload: Event, aggregate: str, tenant: str | None) -> None:
    envelope = new_event(payload, aggregate_id=aggregate, tenant_id=tenant, producer="p")
    again = decode(encode(envelope))
    assert again == envelope
    assert encode(again) == encode(envelope)  # bytes too: hash chains depend on them


json_values = st.recursive(
    st.none()
    | st.booleans()
    | INT64
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def record(name: str, version: Any, payload: Any) -> bytes:
    return orjson.dumps(
        {
            "event_id": "e1",
            "type": name,
            "version": version,
            "aggregate_id": "a1",
            "tenant_id": None,
            "occurred_at": "2026-11-23T10:00:00Z",
            "producer": "p",
            "correlation_id": "c1",
            "causation_id": None,
            "payload": payload,
        }
    )


@settings(max_examples=400)
@given(
    st.sampled_from([cls.TYPE for cls in EVENT_TYPES]),
    st.one_of(json_values, st.dictionaries(st.text(max_size=12), json_values, max_size=6)),
)
def test_any_payload_under_any_real_type_decodes_or_raises_a_typed_error(
    name: str, payload: Any
) -> None:
    try:
        envelope = decode(record(name, REGISTRY.lookup(name).VERSION, payload))
    except EventDecodeError:
        return
    assert type(envelope.payload) is REGISTRY.lookup(name)


@given(st.sampled_from(EVENT_TYPES), st.integers().filter(lambda v: not 1 <= v <= 64))
def test_versions_this_build_cannot_read_are_refused_by_name(
    cls: type[Event], version: int
) -> None:
    if version < 1 and version > -(2**63):
        with pytest.raises(EventDecodeError):
            decode(record(cls.TYPE, version, {}))
    elif 2**63 > version > cls.VERSION:
        with pytest.raises(UnsupportedVersion, match=f"{cls.TYPE} v{version} is newer"):
            decode(record(cls.TYPE, version, {}))
    else:
        with pytest.raises(EventDecodeError):  # beyond int64: not even a valid envelope
            decode(record(cls.TYPE, str(version), {}))


# -- upcasting: a chain v1 -> v2 -> v3 on a registry of this test's own ---------------------

CHAIN = EventRegistry()


@CHAIN.register("DiskResized", version=3)
@dataclass(frozen=True, slots=True, kw_only=True)
class DiskResized(Event):
    size_gb: int
    reason: str


@CHAIN.upcaster("DiskResized", from_version=1)
def _mb_to_gb(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: v for k, v in payload.items() if k != "size_mb"},
        "size_gb": payload["size_mb"] // 1024,
    }


@CHAIN.upcaster("DiskResized", from_version=2)
def _reason(payload: dict[str, Any]) -> dict[str, Any]:
    return {"reason": "before v3", **payload}


@given(st.integers(0, 2**40))
def test_upcasting_settles_and_steps_compose(size_mb: int) -> None:
    from_v1 = decode(record("DiskResized", 1, {"size_mb": size_mb}), CHAIN)
    from_v2 = decode(record("DiskResized", 2, {"size_gb": size_mb // 1024}), CHAIN)
    # Each step applied once: v1 through v2 is the same fact as v2 written directly.
    assert (
        from_v1.payload
        == from_v2.payload
        == DiskResized(size_gb=size_mb // 1024, reason="before v3")
    )
    # An upcast event written back is current: reading it again changes nothing.
    assert decode(encode(from_v1), CHAIN) == from_v1
    assert encode(decode(encode(from_v1), CHAIN)) == encode(from_v1)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=4) | json_values)
def test_an_upcaster_meeting_a_payload_it_cannot_read_is_a_typed_error(payload: Any) -> None:
    try:
        envelope = decode(record("DiskResized", 1, payload), CHAIN)
    except (InvalidPayload, EventDecodeError):
        return
    assert isinstance(envelope.payload, DiskResized)
