"""Resources named on the command line by id or by name, as people remember them."""

from __future__ import annotations

from virga_cli import errors
from virga_cli.client import Client


def resolve(client: Client, collection: str, value: str, *, kind: str) -> str:
    """The id of the one item of `collection` whose id or name is `value`.

    A value that names nothing is passed on as it is: the API's refusal then names the field.
    """
    items = client.paged(collection)
    if any(item.get("id") == value for item in items):
        return value
    named = [str(item["id"]) for item in items if item.get("name") == value and "id" in item]
    if len(named) > 1:
        raise errors.CliFailure(
            f"several {kind}s are named {value!r} ({', '.join(named)}): give an id",
            errors.USAGE,
        )
    return named[0] if named else value
