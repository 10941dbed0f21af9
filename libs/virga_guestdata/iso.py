"""Writing a config drive or NoCloud seed as an ISO 9660 image with xorriso (Rock Ridge and
Joliet, so lower-case names and underscores survive), atomically: a reader of `target` sees
the whole image or none."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Final

from virga_guestdata.layout import CONFIG_DRIVE_LABEL

TOOL: Final = "xorriso"


class IsoError(RuntimeError):
    """xorriso is missing or failed, or a path would leave the image's root."""


def _stage(files: Mapping[str, bytes], root: Path) -> None:
    for name, content in files.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise IsoError(f"{name!r} is not a path inside the image")
        path = root.joinpath(*relative.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def write_iso(files: Mapping[str, bytes], target: Path, label: str = CONFIG_DRIVE_LABEL) -> Path:
    """Write `files` (path → content, as `layout` makes them) as an ISO labelled `label`."""
    if shutil.which(TOOL) is None:
        raise IsoError("xorriso not found: apt-get install xorriso")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".iso-", dir=target.parent) as scratch:
        root = Path(scratch) / "root"
        root.mkdir()
        _stage(files, root)
        partial = Path(scratch) / "image.iso"
        command = [
            TOOL, "-as", "mkisofs", "-quiet", "-volid", label, "-joliet", "-rock",
            "-output", str(partial), str(root),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise IsoError(f"xorriso failed: {(result.stdout + result.stderr).strip()[-2000:]}")
        os.replace(partial, target)
    return target
