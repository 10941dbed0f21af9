"""The files of a config drive or NoCloud seed, as a pure function of a guest's facts.

OpenStack's config drive (`config-2`): exactly `metadata.openstack_files(facts)` under
`openstack/latest/`, the bytes the metadata service serves. NoCloud (`cidata`): `meta-data`,
`user-data`, `network-config` (JSON, which is valid YAML). Paths are relative to the ISO's
root, always with `/`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from virga_guestdata.metadata import GuestFacts, openstack_files

CONFIG_DRIVE_LABEL: Final = "config-2"
NOCLOUD_LABEL: Final = "cidata"
OPENSTACK: Final = "openstack/latest"


def _require_id(facts: GuestFacts) -> None:
    if not facts.instance_id:
        raise ValueError("a guest needs its instance's uuid (cloud-init's instance-id)")


def config_drive_files(facts: GuestFacts) -> dict[str, bytes]:
    """The files of an OpenStack config drive (label `config-2`): path → content."""
    _require_id(facts)
    return {f"{OPENSTACK}/{name}": content for name, content in openstack_files(facts).items()}


def nocloud_files(
    facts: GuestFacts, network_config: Mapping[str, Any] | None = None
) -> dict[str, bytes]:
    """The files of a NoCloud seed (label `cidata`) for the same facts; `network_config` in
    cloud-init's network config format, if any."""
    _require_id(facts)
    document = {"instance-id": facts.instance_id, "local-hostname": facts.hostname}
    files = {"meta-data": _json(document), "user-data": facts.user_data or b""}
    if network_config is not None:
        files["network-config"] = _json(network_config)
    return files


def _json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, indent=1).encode() + b"\n"
