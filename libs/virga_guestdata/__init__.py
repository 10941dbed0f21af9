"""What a guest reads about itself, from one source: its facts (`metadata.GuestFacts`) as
the OpenStack and EC2 metadata documents (`metadata`, served by the network agent), the
config drive's and NoCloud's files of the same documents (`layout`, written by the compute
agent), and the ISO writer (`iso`, xorriso) that makes either into a CD-ROM image. cloud-init
reads all of them."""

from virga_guestdata.layout import (
    CONFIG_DRIVE_LABEL,
    NOCLOUD_LABEL,
    config_drive_files,
    nocloud_files,
)
from virga_guestdata.metadata import (
    GuestFacts,
    GuestNic,
    document,
    meta_data,
    network_data,
    openstack_files,
)

__all__ = [
    "CONFIG_DRIVE_LABEL",
    "NOCLOUD_LABEL",
    "GuestFacts",
    "GuestNic",
    "config_drive_files",
    "document",
    "meta_data",
    "network_data",
    "nocloud_files",
    "openstack_files",
]
