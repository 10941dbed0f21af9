"""qemu-img, bounded: it runs with a time limit, memory, CPU and file-size limits
(`prlimit`), and, sandboxed, in a mount namespace (`bwrap`) that holds only /usr and the
upload's own spool directory, so that even a qcow2 feature Virga's header check missed cannot
make it open a file of this host.

Only ever given images that `core.qcow2.inspect_qcow2` accepted: the sandbox is the second
wall, not the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import structlog

log = structlog.get_logger(__name__)

SANDBOX_ROOT: Final = "/spool"
"""Where the upload's directory appears inside the sandbox (and so in qemu's messages)."""

_REFERENCE_KEYS: Final = frozenset(
    {"backing-filename", "full-backing-filename", "backing-image", "data-file"}
)
"""Keys of `qemu-img info`'s JSON that name another file, wherever qemu puts them."""


class QemuImgFailed(Exception):
    """qemu-img refused the image, failed, or ran out of a limit; the message is the tenant's
    to read (it names paths inside the sandbox only)."""


@dataclass(frozen=True, slots=True)
class QemuImgLimits:
    """The bounds one qemu-img run gets."""

    timeout_seconds: float = 600.0
    """Wall clock; the process is killed past it. Also its CPU-seconds limit."""
    memory_bytes: int = 2 << 30
    """Its address-space limit (RLIMIT_AS)."""
    sandbox: bool = True
    """Run it under bwrap with only /usr and the spool directory visible."""


def sandbox_available() -> bool:
    """Whether `bwrap` is installed (Debian's `bubblewrap`)."""
    return shutil.which("bwrap") is not None


def names_another_file(info: Any) -> bool:
    """Whether `qemu-img info --output=json` names a backing or data file anywhere."""
    if isinstance(info, dict):
        return any(
            (key in _REFERENCE_KEYS and value) or names_another_file(value)
            for key, value in info.items()
        )
    if isinstance(info, list):
        return any(names_another_file(item) for item in info)
    return False


class QemuImg:
    """qemu-img over the files of one directory (the upload's spool directory)."""

    def __init__(self, directory: Path, limits: QemuImgLimits) -> None:
        self._directory = directory
        self._limits = limits

    async def info(self, name: str) -> dict[str, Any]:
        """`qemu-img info` of a qcow2 file of the directory, as JSON."""
        out = await self._run(
            ["info", "--output=json", "-f", "qcow2", self._path(name)], file_size=1 << 20
        )
        try:
            info = json.loads(out)
        except ValueError as error:
            raise QemuImgFailed(f"qemu-img info gave no JSON: {error}") from None
        if not isinstance(info, dict):
            raise QemuImgFailed("qemu-img info gave no JSON object")
        return info

    async def convert_to_raw(self, source: str, target: str, virtual_size: int) -> None:
        """Convert a qcow2 file of the directory to a raw one of `virtual_size` bytes; qemu
        cannot write a larger file (RLIMIT_FSIZE)."""
        argv = ["convert", "-f", "qcow2", "-O", "raw", self._path(source), self._path(target)]
        await self._run(argv, file_size=max(virtual_size, 1))

    def _path(self, name: str) -> str:
        root = SANDBOX_ROOT if self._limits.sandbox else str(self._directory)
        return f"{root}/{name}"

    def _argv(self, args: list[str], file_size: int) -> list[str]:
        limits = self._limits
        argv = [
            "prlimit",
            f"--as={limits.memory_bytes}",
            f"--cpu={max(1, int(limits.timeout_seconds))}",
            f"--fsize={file_size}",
            "--",
        ]
        if limits.sandbox:
            argv += [
                "bwrap",
                "--ro-bind", "/usr", "/usr",
                "--symlink", "usr/lib", "/lib",
                "--symlink", "usr/lib64", "/lib64",
                "--symlink", "usr/bin", "/bin",
                "--bind", str(self._directory), SANDBOX_ROOT,
                "--dev", "/dev",
                "--unshare-all",
                "--die-with-parent",
                "--",
            ]  # fmt: skip
        return [*argv, "qemu-img", *args]

    async def _run(self, args: list[str], *, file_size: int) -> str:
        # Its own session (no controlling terminal, so no TIOCSTI into ours) and process group,
        # so that a timeout ends prlimit, bwrap and qemu-img together, even one that bwrap had
        # not yet tied to its own life.
        process = await asyncio.create_subprocess_exec(
            *self._argv(args, file_size),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), self._limits.timeout_seconds)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.communicate()  # reaps it and closes its pipes
            raise QemuImgFailed(
                f"qemu-img {args[0]} took longer than {self._limits.timeout_seconds:g} s"
            ) from None
        if process.returncode != 0:
            reason = err.decode(errors="replace").strip().replace(str(self._directory), "")
            log.info("qemu_img_failed", command=args[0], status=process.returncode)
            raise QemuImgFailed(
                f"qemu-img {args[0]}: {reason[-300:] or f'ended with {process.returncode}'}"
            )
        return out.decode(errors="replace")
