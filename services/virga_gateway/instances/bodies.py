"""Request bodies of instances, with their constraints."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from virga_gateway.validation import Body, Name, Reference, Trait


class CreateInstance(Body):
    name: Name
    flavor: Name
    image: Reference | None = None
    network_id: Reference | None = None
    """Id of one of the tenant's networks: the instance gets a port on it."""
    network: Reference | None = None
    """The older name of `network_id`, still accepted (not both, unless they agree)."""
    server_group: Reference | None = None
    """Id of a server group of the same tenant."""
    availability_zone: Reference | None = None
    required_traits: Annotated[list[Trait], msgspec.Meta(max_length=32)] = []
    delete_on_termination: bool = True
    restart_policy: Literal["never", "on-crash", "always"] = "never"
    """What the compute agent does when the guest stops without Virga asking (it powered
    itself off, crashed, or was destroyed outside Virga): `never` leaves it STOPPED,
    `on-crash` starts it again after a crash, `always` after any such stop."""
    tenant_id: Reference | None = None
    """Required when an admin creates an instance: the tenant that will own it."""


class InstanceAction(Body):
    action: Literal["start", "stop", "reboot"]
