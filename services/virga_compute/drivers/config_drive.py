"""An instance's config drive: its files (OpenStack layout, from the `InstanceSpec`) and the
ISO 9660 image (label `config-2`) the libvirt driver writes before the domain is defined and
removes with it.

The files are `virga_guestdata`'s layout of the spec's facts: meta_data.json (uuid = the
instance id, name, hostname, public_keys, availability_zone), user_data decoded, and
network_data.json with the first addressed NIC's static address and gateway. No DHCP is
needed to read it, which is what it is for.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from virga_compute.core.spec import InstanceSpec
from virga_compute.drivers.base import DriverError
from virga_guestdata import config_drive_files, meta_data, static_network_data
from virga_guestdata.iso import IsoError, write_iso


def network_data(spec: InstanceSpec) -> dict[str, Any]:
    """network_data.json: the first NIC with an address, statically; else nothing."""
    nic = next((nic for nic in spec.nics if nic.address is not None), None)
    if nic is None or nic.address is None:
        return {}
    return static_network_data(nic.mac, nic.address, nic.gateway)


def drive_files(spec: InstanceSpec) -> dict[str, bytes]:
    """Path → content of the spec's config drive; raises ValueError if it has none."""
    drive = spec.config_drive
    if drive is None:
        raise ValueError(f"{spec.instance_id} has no config drive")
    meta = meta_data(
        spec.instance_id,
        spec.name,
        hostname=drive.hostname,
        public_keys=drive.keys_by_name(),
        availability_zone=drive.availability_zone,
    )
    return config_drive_files(meta, drive.user_data_bytes(), network_data(spec))


def write_drive(spec: InstanceSpec, path: str | None, *, rewrite: bool = True) -> None:
    """Write the spec's config drive image at `path` (if it has a drive), atomically: whole
    or not at all. Without `rewrite`, an image already there is kept as it is (the domain
    that uses it exists already). Raises `DriverError`."""
    if spec.config_drive is None or path is None or (not rewrite and os.path.exists(path)):
        return
    try:
        write_iso(drive_files(spec), Path(path))
    except (IsoError, OSError, ValueError) as exc:
        raise DriverError(f"cannot write the config drive of {spec.instance_id}: {exc}") from exc


def remove_drive(path: str) -> None:
    """Remove a config drive image; one already gone is no error."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
