"""What request bodies share: their base Struct, the constrained field types, and errors that
name the field.

The bodies (each resource's `bodies.py`) feed the OpenAPI document too, so what is documented
is what is enforced.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, TypeVar

import msgspec

from virga_gateway.problems import FieldError, invalid, invalid_fields

Name = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=63,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="1-63 characters: letters, digits, '.', '_' or '-'.",
    ),
]
Text = Annotated[str, msgspec.Meta(max_length=255)]
Reference = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Trait = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9_]{1,255}$", description="e.g. CUSTOM_GPU")]
Ratio = Annotated[float, msgspec.Meta(gt=0, le=1000)]


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Bodies refuse fields they do not know: a typo must not be silently ignored."""


B = TypeVar("B", bound=msgspec.Struct)


def published_as(name: str) -> Callable[[type[B]], type[B]]:
    """Publish a body's OpenAPI schema as `name`.

    msgspec names a schema after its class; a body class whose name would collide with an
    event or effect elsewhere carries a `Body` suffix, and keeps its published name this way.
    """

    def rename(body_type: type[B]) -> type[B]:
        body_type.__name__ = name
        return body_type

    return rename


def parse_json(raw: bytes) -> object:
    """The body as JSON values; malformed JSON is a 400 naming `body`."""
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise invalid(400, "body", str(exc)) from None
    except RecursionError:
        # msgspec's own depth guard (it raises before the stack is at risk): a hostile body
        # of a few KB of brackets, which no body of the API comes near.
        raise invalid(400, "body", "JSON nested too deeply") from None


def validate(value: object, body_type: type[B]) -> B:
    """`value` as `body_type`, or a 422 problem naming the offending field."""
    try:
        return msgspec.convert(value, body_type)
    except msgspec.ValidationError as exc:
        raise invalid_fields([field_error(str(exc))]) from None


def validate_query(query: dict[str, str], params_type: type[B]) -> B:
    """A query string as `params_type`, or a 400 problem naming each offending parameter
    (as every bad query parameter of the API is)."""
    try:
        return msgspec.convert(query, params_type, strict=False)
    except msgspec.ValidationError as exc:
        error = field_error(str(exc))
        raise invalid(400, error.field, error.message) from None


_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]*)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]*)`$")


def field_error(message: str) -> FieldError:
    """Turn msgspec's "... - at `$.a[0].b`" into a FieldError for field `a[0].b`."""
    found = _AT.match(message)
    assert found is not None  # the pattern matches any string
    text, path = found["message"], (found["path"] or "").lstrip(".")
    for pattern, what in ((_MISSING, "is required"), (_UNKNOWN, "is not a known field")):
        named = pattern.match(text)
        if named and named["name"]:
            return FieldError(_join(path, named["name"]), what)
        if named:  # `{"": ...}`: a field with no name cannot be named; its object can
            return FieldError(path or "body", f"has a field with an empty name, which {what}")
    return FieldError(path or "body", text)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def check(condition: bool, field: str, message: str) -> None:
    """A semantic check of a well-formed body (the flavor exists...): 422 naming `field`."""
    if not condition:
        raise invalid_fields([FieldError(field, message)])
