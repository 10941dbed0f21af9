"""Command line for the local development stack: ``python -m virga_devstack kafka start``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from virga_devstack import (
    ceph_cli,
    guest_image,
    kafka_cli,
    libvirt,
    libvirt_host,
    stack,
    stock_image,
)

COMPONENTS: dict[str, Callable[[Sequence[str], str], int]] = {
    "ceph": ceph_cli.main,
    "guest-image": guest_image.main,
    "image": stock_image.main,
    "kafka": kafka_cli.main,
    "libvirt": libvirt.main,
    "libvirt-host": libvirt_host.main,
    "stack": stack.main,
}


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in COMPONENTS:
        names = "|".join(COMPONENTS)
        print(f"usage: python -m virga_devstack {{{names}}} COMMAND [OPTIONS]", file=sys.stderr)
        return 2
    component = arguments[0]
    return COMPONENTS[component](arguments[1:], f"python -m virga_devstack {component}")


if __name__ == "__main__":
    sys.exit(main())
