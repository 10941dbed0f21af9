"""An instance's config drive: its files (OpenStack layout, from the `InstanceSpec`) and the
ISO 9660 image (label `config-2`) the libvirt driver writes before the domain is defined and
removes with it.

The files are `virga_guestdata`'s: the spec's facts as a `GuestFacts` (uuid = the instance
id, name, hostname, project, keys, zone, user data decoded, and the first addressed NIC's
static address and gateway), laid out exactly as the network agent's metadata service
serves them. The agent knows neither the network's MTU nor its DNS servers: those are left
out. No DHCP is needed to read it, which is what it is for.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from pathlib import Path

from virga_compute.core.spec import InstanceSpec
from virga_compute.drivers.base import DriverError
from virga_guestdata import GuestFacts, GuestNic, config_drive_files
from virga_guestdata.iso import IsoError, write_iso


def guest_nic(spec: InstanceSpec) -> GuestNic | None:
    """The first NIC with an address, statically; else None (the guest is told nothing)."""
    nic = next((nic for nic in spec.nics if nic.address is not None), None)
    if nic is None or nic.address is None:
        return None
    interface = ipaddress.ip_interface(nic.address)
    return GuestNic(
        mac=nic.mac, ips=(str(interface.ip),), cidr=str(interface.network), gateway=nic.gateway
    )


def guest_facts(spec: InstanceSpec) -> GuestFacts:
    """What the spec's guest reads about itself; raises ValueError if it has no drive."""
    drive = spec.config_drive
    if drive is None:
        raise ValueError(f"{spec.instance_id} has no config drive")
    return GuestFacts(
        instance_id=spec.instance_id,
        name=spec.name,
        hostname=drive.hostname or spec.name,
        availability_zone=drive.availability_zone,
        project_id=drive.project_id,
        key_name=drive.key_name,
        public_keys=drive.public_keys,
        user_data=drive.user_data_bytes(),
        nic=guest_nic(spec),
    )


def drive_files(spec: InstanceSpec) -> dict[str, bytes]:
    """Path → content of the spec's config drive; raises ValueError if it has none."""
    return config_drive_files(guest_facts(spec))


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
