"""`make up`'s stock images: Debian 12's cloud image built (or taken from the cache) and
uploaded as the public image `debian-12`, with progress; skipped with
`VIRGA_DEVSTACK_IMAGES=none`. An available public `debian-12` with the same bytes counts as
uploaded, so a second `make up` only looks (well under a second with a warm cache)."""

from __future__ import annotations

import os
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from virga_devstack import seed, stock_image

SETTING = "VIRGA_DEVSTACK_IMAGES"
DEFAULT = stock_image.NAME


def wanted() -> list[str]:
    """The stock images `make up` uploads: `$VIRGA_DEVSTACK_IMAGES`, comma-separated names
    (default `debian-12`); `none` or empty for none."""
    names = [n.strip() for n in os.environ.get(SETTING, DEFAULT).split(",") if n.strip()]
    unknown = set(names) - {stock_image.NAME, "none"}
    if unknown:
        raise seed.SeedError(f"{SETTING}: no stock image called {', '.join(sorted(unknown))}")
    return [] if names in ([], ["none"]) else names


class Progress:
    """A file body that reports each tenth of itself read, as `upload` sends it."""

    def __init__(self, file: BinaryIO, size: int, report: Callable[[str], None]) -> None:
        self._file, self._size, self._report = file, max(size, 1), report
        self._read, self._tenth = 0, 0

    def read(self, amount: int = -1) -> bytes:
        chunk = self._file.read(amount)
        self._read += len(chunk)
        while self._tenth < 10 and self._read * 10 >= self._size * (self._tenth + 1):
            self._tenth += 1
            self._report(f"{self._tenth * 10}%")
        return chunk


def _find(api: str, token: str, digest: str, in_pool: Callable[[str], bool] | None) -> str | None:
    for item in seed._images(api, token):
        same = item.get("sha256") == digest and item.get("name") == stock_image.NAME
        usable = item.get("visibility") == "public" and item.get("status") == "available"
        if same and usable and (in_pool is None or in_pool(item["id"])):
            return str(item["id"])
    return None


def upload(
    api: str,
    token: str,
    disk: Path,
    digest: str,
    *,
    in_pool: Callable[[str], bool] | None = None,
    report: Callable[[str], None] = lambda text: None,
    wait_seconds: float = 600.0,
) -> tuple[str, bool]:
    """(the public image's id, whether this call uploaded it)."""
    if (found := _find(api, token, digest, in_pool)) is not None:
        return found, False
    size = disk.stat().st_size
    query = urllib.parse.urlencode(
        {"name": stock_image.NAME, "disk_format": "qcow2", "visibility": "public"}
    )
    with disk.open("rb") as file:
        _, image = seed._call(
            api,
            token,
            "POST",
            f"/v1/images?{query}",
            body=Progress(file, size, report),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            timeout=wait_seconds,
        )
    deadline = time.monotonic() + wait_seconds
    while image["status"] == "importing":  # a 504: uploaded, its outcome not recorded yet
        if time.monotonic() > deadline:
            raise seed.SeedError(f"image {image['id']} still importing after {wait_seconds:.0f} s")
        time.sleep(0.5)
        _, image = seed._call(api, token, "GET", f"/v1/images/{image['id']}")
    if image["status"] != "available":
        raise seed.SeedError(f"image {image['id']} is {image['status']}: {image.get('fault')}")
    return str(image["id"]), True


def seed_stock(api: str, token: str, *, in_pool: Callable[[str], bool] | None = None) -> str | None:
    """Build (or take from the cache) and upload every wanted stock image; what was done,
    or None when the setting asks for none. Progress goes to stdout as it happens."""
    if not wanted():
        return None

    def say(text: str) -> None:
        print(f" {text}", end="", flush=True)

    began = time.monotonic()
    image = stock_image.build(log=lambda line: print(f"\n    {line}", end="", flush=True))
    built = time.monotonic() - began > 1.0
    image_id, uploaded = upload(api, token, image.disk, image.sha256(), in_pool=in_pool, report=say)
    retired, kept = seed.retire_older(api, token, image_id, stock_image.NAME)
    done = f"{'built, ' if built else ''}{'uploaded' if uploaded else 'already there'}: {image_id}"
    if retired:
        done += f"; {len(retired)} older deleted"
    if kept:
        done += f"; older {', '.join(kept)} kept (volumes are clones of it)"
    return done
