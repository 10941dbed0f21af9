"""Debian's Ceph bindings (``rados``, ``rbd``) made importable from the venv, and only them.

They exist only as Debian packages (python3-rados, python3-rbd), built for Debian's CPython
3.11: ``python -m virga_devstack ceph link-bindings`` (``make ceph-bindings``, the Dockerfile)
links them into the venv.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path
from typing import Final

from virga_devstack.ceph import CephError, missing_packages_message

DIST_PACKAGES: Final = Path("/usr/lib/python3/dist-packages")
BINDINGS: Final = ("rados", "rbd")
# The venv's directory of links to Debian's rados/rbd modules, and the .pth naming it: only
# those two modules become importable, not the rest of Debian's dist-packages.
BINDINGS_DIR_NAME: Final = "_virga_ceph_bindings"


def link_bindings(site_packages: Path | None = None) -> Path:
    """Make Debian's ``rados``/``rbd`` C modules importable from this venv; return the .pth.

    They are built for Debian's CPython 3.11, the interpreter the venv is made from. A
    directory of symbolic links to just those two modules is put on the path by a .pth file,
    so the rest of Debian's dist-packages cannot shadow what pip installed.
    """
    if site_packages is None:
        if sys.prefix == sys.base_prefix:
            raise CephError("not running inside a virtual environment: run from .venv/bin/python")
        site_packages = Path(sysconfig.get_paths()["purelib"])
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    sources = {name: DIST_PACKAGES / f"{name}{suffix}" for name in BINDINGS}
    missing = [name for name, source in sources.items() if not source.is_file()]
    if missing:
        raise CephError(missing_packages_message([f"python3-{name}" for name in missing]))
    links = site_packages / BINDINGS_DIR_NAME
    links.mkdir(parents=True, exist_ok=True)
    for source in sources.values():
        link = links / source.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(source)
    pth = site_packages / f"{BINDINGS_DIR_NAME}.pth"
    pth.write_text(f"{links}\n")
    return pth
