"""What a guest reads about itself: the OpenStack config drive (`config-2`) and NoCloud
(`cidata`) layouts as pure functions of the instance's facts (`layout`), and the ISO writer
(`iso`, xorriso) that makes either into a CD-ROM image. cloud-init reads both."""

from virga_guestdata.layout import (
    CONFIG_DRIVE_LABEL,
    NOCLOUD_LABEL,
    config_drive_files,
    meta_data,
    nocloud_files,
    static_network_data,
)

__all__ = [
    "CONFIG_DRIVE_LABEL",
    "NOCLOUD_LABEL",
    "config_drive_files",
    "meta_data",
    "nocloud_files",
    "static_network_data",
]
