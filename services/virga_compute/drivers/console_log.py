"""The guests' serial console logs: files libvirt's virtlogd writes (`<log file=... append=on>`
in the domain XML, `domain_xml.console_log_path`), read from their end, removed with their
domain.

virtlogd caps each file at its `max_size` (2 MiB by default, /etc/libvirt/virtlogd.conf) and
keeps `max_backups` (3) rotated copies, `<file>.0` to `<file>.2`: a guest's log takes at most
8 MiB on its host. The last lines are read from the current file only.
"""

from __future__ import annotations

import contextlib
import glob
import os

READ_LIMIT = 4 << 20
"""Bytes read from the end of a log at most (twice virtlogd's default cap)."""


def tail(path: str, lines: int) -> list[str]:
    """The last `lines` lines of the log (without line ends); none if there is no log yet."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - READ_LIMIT))
            data = log.read()
    except FileNotFoundError:
        return []
    text = data.decode(errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    found = text.split("\n")
    if found and found[-1] == "":
        found.pop()  # the line end of the last line, not a line of its own
    return found[-lines:] if lines > 0 else []


def remove_log(path: str) -> None:
    """Remove a domain's log and virtlogd's rotated copies of it; those gone are no error."""
    for each in [path, *glob.glob(glob.escape(path) + ".[0-9]*")]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(each)
