"""Request bodies as msgspec Structs with their constraints, and errors that name the field.

The same Structs feed the OpenAPI document, so what is documented is what is enforced.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, TypeVar

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


class _Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Bodies refuse fields they do not know: a typo must not be silently ignored."""


class CreateTenant(_Body):
    name: Name


class IssueToken(_Body):
    expires_in_seconds: Annotated[int, msgspec.Meta(ge=1, le=10 * 365 * 86400)] | None = None
    """Lifetime of the token; none: it lives until revoked."""


class CreateFlavor(_Body):
    name: Name
    vcpus: Annotated[int, msgspec.Meta(ge=1, le=1024)]
    ram_mb: Annotated[int, msgspec.Meta(ge=64, le=16 * 1024 * 1024)]
    disk_gb: Annotated[int, msgspec.Meta(ge=0, le=64 * 1024)]


class CreateInstance(_Body):
    name: Name
    flavor: Name
    image: Reference | None = None
    network: Reference | None = None
    server_group: Reference | None = None
    """Id of a server group of the same tenant."""
    availability_zone: Reference | None = None
    required_traits: Annotated[list[Trait], msgspec.Meta(max_length=32)] = []
    delete_on_termination: bool = True
    tenant_id: Reference | None = None
    """Required when an admin creates an instance: the tenant that will own it."""


class InstanceAction(_Body):
    action: Literal["start", "stop", "reboot"]


class CreateServerGroup(_Body):
    name: Name
    policy: Literal["affinity", "anti-affinity"]
    scope: Literal["host", "rack"] = "host"
    tenant_id: Reference | None = None
    """Required when an admin creates a server group: the tenant that will own it."""


class HostAction(_Body):
    action: Literal["disable", "enable"]
    reason: Text = ""


class SetAllocationRatios(_Body):
    cpu: Ratio
    ram: Ratio
    disk: Ratio
    host: Reference | None = None
    """A host's own ratios; none: the default of every host without its own."""


B = TypeVar("B", bound=msgspec.Struct)


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
