"""Resources named on the command line by id or by name, as people remember them.

One rule for every argument that takes a resource: its id, or the name of exactly one of the
resources the caller can see. A name two resources share is a usage error listing their ids;
a value that is neither an id nor a name is refused before any request that writes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from virga_cli import errors
from virga_cli.client import Client

COLLECTIONS = {
    "instance": "/v1/instances",
    "image": "/v1/images",
    "network": "/v1/networks",
    "port": "/v1/ports",
    "volume": "/v1/volumes",
    "security group": "/v1/security-groups",
    "server group": "/v1/server-groups",
    "tenant": "/v1/tenants",
    "external network": "/v1/external-networks",
    "router": "/v1/routers",
}
"""Each kind of resource a command argument may name, and the listing its names come from."""

_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
"""The shape of every id the API hands out (a UUID): such a value is used as it is."""


def resolve(client: Client, kind: str, value: str) -> str:
    """The id of the one `kind` (a key of COLLECTIONS) whose id or name is `value`."""
    if _ID.match(value):
        return value  # the API answers 404 naming it if there is none
    return pick(kind, value, lambda: client.paged(COLLECTIONS[kind]))


def resolve_all(client: Client, kind: str, values: tuple[str, ...]) -> list[str]:
    """`resolve` of each value, listing the collection at most once."""
    listed: list[Any] | None = None

    def items() -> list[Any]:
        nonlocal listed
        if listed is None:
            listed = client.paged(COLLECTIONS[kind])
        return listed

    return [value if _ID.match(value) else pick(kind, value, items) for value in values]


def resolve_snapshot(client: Client, value: str, *, volume_id: str | None = None) -> str:
    """The id of the one volume snapshot (of `volume_id`, else of any volume) `value` names."""
    if _ID.match(value):
        return value

    def snapshots() -> list[Any]:
        volumes = (
            [client.get(f"/v1/volumes/{volume_id}")] if volume_id else client.paged("/v1/volumes")
        )
        return [s for v in volumes for s in v.get("snapshots") or []]

    return pick("snapshot", value, snapshots)


def pick(kind: str, value: str, items: Callable[[], list[Any]]) -> str:
    """The id of the one item of `items()` whose id or name is `value`, or a failure."""
    listed = [item for item in items() if isinstance(item, dict) and "id" in item]
    if any(item["id"] == value for item in listed):
        return value
    named = [str(item["id"]) for item in listed if item.get("name") == value]
    if len(named) > 1:
        raise errors.CliFailure(
            f"several {kind}s are named {value!r} ({', '.join(named)}): give an id",
            errors.USAGE,
        )
    if not named:
        raise errors.CliFailure(f"no {kind} has the id or name {value!r}", errors.API_ERROR)
    return named[0]
