"""Properties of the gateway's body handling: whatever arrives, a problem or a value.

`parse_json` and `validate` are the only code between the raw body and a route's logic;
anything they raise other than a `Problem` would be a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from virga_gateway.problems import Problem
from virga_gateway.routes import ROUTES
from virga_gateway.validation import parse_json, validate

BODY_TYPES = sorted({r.request for r in ROUTES if r.request is not None}, key=lambda t: t.__name__)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["", "a" * 300, "10.0.0.0/24", "ingress", "extend", "stop", "-1"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["name", "size_gb", "rules", "action", "cidr", "tenant_id", "x"])
            | st.text(max_size=8),
            children,
            max_size=5,
        )
    ),
    max_leaves=15,
)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_a_400_naming_the_body(raw: bytes) -> None:
    problem = problem_of(parse_json, raw)
    if problem is not None:
        assert problem.status == 400
        assert [e.field for e in problem.errors] == ["body"]


@given(st.integers(1, 200_000), st.sampled_from([b"[", b'{"a":', b'{"name": [']))
def test_nesting_of_any_depth_parses_or_is_a_400(depth: int, opener: bytes) -> None:
    closer = {b"[": b"]", b'{"a":': b"}", b'{"name": [': b"]}"}[opener]
    problem = problem_of(parse_json, opener * depth + b"1" * (opener != b"[") + closer * depth)
    assert problem is None or problem.status == 400


@settings(max_examples=500)
@given(st.sampled_from(BODY_TYPES), json_values)
def test_any_json_validates_or_is_a_422_naming_a_field(body_type: Any, value: Any) -> None:
    decoded = parse_json(orjson.dumps(value)) if _finite(value) else value
    problem = problem_of(validate, decoded, body_type)
    if problem is not None:
        assert problem.status == 422
        assert problem.errors
        assert all(e.field for e in problem.errors)


def problem_of(function: Callable[..., object], *args: Any) -> Problem | None:
    """The problem `function(*args)` raises, if any (anything else fails the test)."""
    try:
        function(*args)
    except Problem as problem:
        return problem
    return None


def _finite(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


def test_every_route_body_type_is_exercised() -> None:
    assert len(BODY_TYPES) >= 10
