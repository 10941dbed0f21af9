"""Request bodies of instances, with their constraints."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from virga_gateway.validation import Body, Name, Reference, Trait

USER_DATA_MAX_BYTES = 64 * 1024
"""Most user data accepted, decoded (Nova's limit)."""
UserData = Annotated[
    str,
    msgspec.Meta(
        max_length=4 * ((USER_DATA_MAX_BYTES + 2) // 3),
        description="Base64 (RFC 4648, no line breaks) of up to 64 KiB: the guest's"
        " cloud-init user data (a #cloud-config or a script).",
    ),
]


class CreateInstance(Body):
    name: Name
    flavor: Name
    image: Reference | None = None
    network_id: Reference | None = None
    """Id of one of the tenant's networks: the instance gets a port on it."""
    network: Reference | None = None
    """The older name of `network_id`, still accepted (not both, unless they agree)."""
    security_groups: Annotated[list[Reference], msgspec.Meta(max_length=16)] = []
    """Ids of the tenant's security groups for the instance's port (with a network); none:
    the tenant's default group."""
    server_group: Reference | None = None
    """Id of a server group of the same tenant."""
    availability_zone: Reference | None = None
    required_traits: Annotated[list[Trait], msgspec.Meta(max_length=32)] = []
    delete_on_termination: bool = True
    restart_policy: Literal["never", "on-crash", "always"] = "never"
    """What the compute agent does when the guest stops without Virga asking (it powered
    itself off, crashed, or was destroyed outside Virga): `never` leaves it STOPPED,
    `on-crash` starts it again after a crash, `always` after any such stop."""
    key_name: Name | None = None
    """The name of one of the tenant's keypairs: its public key is copied into the request
    (deleting the keypair later changes nothing for this instance) and served to the guest."""
    user_data: UserData | None = None
    config_drive: bool = False
    """Attach a config drive (ISO 9660, label `config-2`) with the metadata, for images that
    cannot reach the metadata service."""
    tenant_id: Reference | None = None
    """Required when an admin creates an instance: the tenant that will own it."""


class InstanceAction(Body):
    action: Literal["start", "stop", "reboot", "live-migrate", "evacuate", "resize"]
    host: Reference | None = None
    """`live-migrate` and `evacuate` only (admins): the destination host; none: the scheduler
    picks one. `live-migrate` is the same as `POST /v1/instances/{id}/migrate`; `evacuate`
    rebuilds an instance whose host is down on another host, from its disks."""
    flavor: Reference | None = None
    """`resize` only, and required there: the flavor (its name) to run the instance with; its
    disk may not be smaller than the current flavor's."""


class MigrateInstance(Body):
    host: Reference | None = None
    """The destination host; none: the scheduler picks one by the same filters as a
    placement (capacity, zone, server group), among the hosts that receive migrations."""
