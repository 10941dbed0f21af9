"""What an instance's guest is told about itself at boot: its host name, made from the
instance name, and the checks on the user data it is handed."""

from __future__ import annotations

import base64
import binascii
import re

from virga_gateway.instances.bodies import USER_DATA_MAX_BYTES

_NOT_LABEL = re.compile(r"[^a-z0-9-]+")
_DASHES = re.compile(r"-{2,}")
LABEL_MAX = 63


def hostname_for(name: str, instance_id: str) -> str:
    """`name` as an RFC 1123 label: lowercase letters, digits and inner '-', at most 63
    characters; ``instance-<first 8 of the id>`` when nothing of the name is left."""
    label = _DASHES.sub("-", _NOT_LABEL.sub("-", name.lower()))
    label = label.strip("-")[:LABEL_MAX].strip("-")
    return label or f"instance-{instance_id.replace('-', '')[:8].lower()}"


def user_data_problem(user_data: str) -> str | None:
    """Why `user_data` is refused (not base64, or over 64 KiB decoded); None if it is fine."""
    try:
        decoded = base64.b64decode(user_data, validate=True)
    except (binascii.Error, ValueError):
        return "must be base64 (RFC 4648, without line breaks)"
    if len(decoded) > USER_DATA_MAX_BYTES:
        return f"is {len(decoded)} bytes decoded: at most {USER_DATA_MAX_BYTES}"
    return None
