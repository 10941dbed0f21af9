"""Seeding a fresh local cloud through its own API: Virga's guest image as a public image."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from virga_devstack.guest_image import GuestImage

IMAGE_NAME = "virga-guest"


class SeedError(RuntimeError):
    """The API refused the seed or did not answer; the message holds its problem detail."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status of a refusal; None when the API did not answer."""


def _call(
    api: str,
    token: str,
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, Any]:
    request = urllib.request.Request(
        api.rstrip("/") + path,
        data=body,
        method=method,
        headers={"Authorization": f"Bearer {token}", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        error.close()
        raise SeedError(f"{method} {path}: HTTP {error.code}: {detail}", error.code) from None
    except (urllib.error.URLError, OSError) as error:
        raise SeedError(f"{method} {path}: {error}") from None


def _sha256(image: GuestImage) -> str:
    manifest = json.loads((image.directory / "manifest.json").read_text())
    digest: str = manifest["sha256"][image.disk.name]
    return digest


def _images(api: str, token: str) -> list[dict[str, Any]]:
    """Every image the token sees, following the listing's `next` cursors."""
    items: list[dict[str, Any]] = []
    path = "/v1/images?limit=200"
    while True:
        _, page = _call(api, token, "GET", path)
        items.extend(page.get("items", []))
        if not page.get("next"):
            return items
        path = f"/v1/images?limit=200&cursor={urllib.parse.quote(page['next'])}"


def find_seeded(
    api: str, token: str, image: GuestImage, in_pool: Callable[[str], bool] | None = None
) -> dict[str, Any] | None:
    """The public image already holding exactly these bytes, if any (and if `in_pool` says
    its RBD image still exists: a memstore cluster restarted empty has lost it)."""
    digest = _sha256(image)
    for item in _images(api, token):
        usable = item.get("status") == "available"
        if usable and item.get("sha256") == digest and item.get("visibility") == "public":
            if in_pool is not None and not in_pool(item["id"]):
                continue
            found: dict[str, Any] = item
            return found
    return None


def seed_guest_image(
    api: str,
    token: str,
    image: GuestImage,
    *,
    in_pool: Callable[[str], bool] | None = None,
    wait_seconds: float = 120.0,
) -> tuple[dict[str, Any], bool]:
    """(the image as the API shows it, whether this call uploaded it).

    An available public image with the same bytes counts as seeded. No Idempotency-Key: a
    retry after a failed import must upload again, not replay the failure; a seed
    interrupted mid-upload leaves an image in error beside the one the retry makes. A later
    image (a new kernel, a new /init) is uploaded beside the old one, which
    `retire_older` then deletes.
    """
    found = find_seeded(api, token, image, in_pool)
    uploaded = False
    if found is None:
        with image.disk.open("rb") as body:
            _, found = _call(
                api,
                token,
                "POST",
                f"/v1/images?name={IMAGE_NAME}&disk_format=raw&visibility=public",
                body=body,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(image.disk.stat().st_size),
                },
                timeout=wait_seconds,
            )
        uploaded = True
    assert found is not None
    deadline = time.monotonic() + wait_seconds
    while found["status"] == "importing":  # a 504: uploaded, its outcome not recorded yet
        if time.monotonic() > deadline:
            raise SeedError(f"image {found['id']} still importing after {wait_seconds:.0f} s")
        time.sleep(0.5)
        _, found = _call(api, token, "GET", f"/v1/images/{found['id']}")
    if found["status"] != "available":
        raise SeedError(f"image {found['id']} is {found['status']}: {found.get('fault')}")
    return found, uploaded


def retire_older(
    api: str, token: str, current_id: str, name: str = IMAGE_NAME
) -> tuple[list[str], list[str]]:
    """Delete the other public images called `name` (earlier seeds), so the name means
    one image and the README's `--image virga-guest` works. (retired ids, kept ids): one that
    volumes are still clones of stays (409) until they are gone, and a later run retires it.
    """
    retired: list[str] = []
    kept: list[str] = []
    for item in _images(api, token):
        older = item.get("name") == name and item.get("visibility") == "public"
        if not older or item["id"] == current_id or item.get("status") == "deleting":
            continue
        try:
            _call(api, token, "DELETE", f"/v1/images/{item['id']}")
            retired.append(item["id"])
        except SeedError as error:
            if error.status != 409:
                raise
            kept.append(item["id"])
    return retired, kept


def seed_and_retire(
    api: str, token: str, image: GuestImage, *, in_pool: Callable[[str], bool] | None = None
) -> tuple[str, str]:
    """`seed_guest_image`, then `retire_older`: (the seeded image's id, what was done)."""
    seeded, uploaded = seed_guest_image(api, token, image, in_pool=in_pool)
    retired, kept = retire_older(api, token, seeded["id"])
    done = f"{'uploaded' if uploaded else 'already there'}: {seeded['id']}"
    if retired:
        done += f"; {len(retired)} older deleted"
    if kept:
        done += f"; older {', '.join(kept)} kept (volumes are clones of it)"
    return seeded["id"], done
