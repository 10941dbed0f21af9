"""The storage service's internal upload endpoint: an image's bytes, streamed by the gateway,
staged on disk, converted to raw when qcow2, written to the pool, and its outcome appended.

The gateway records `ImageImportRequested` first and only then streams the body here
(`PUT /internal/images/{id}`), so every image in the pool belongs to a request in the log.
The stream presents the request's one-time upload key, whose digest the request recorded:
no one else can fill the image.
The image is created in the pool only once the whole body has arrived (the stage file
holds it), so a cut-off upload never touches Ceph; a crash while the pool is written is
cleaned up when the service is ready again (`decide.on_ready`). An import cut off by an
unavailable cluster cannot remove its partial image at once either: that is retried in the
background until Ceph answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from aiohttp import web

from virga_events.catalog.storage import (
    UPLOAD_KEY_HEADER,
    ImageImported,
    ImageImportFailed,
    ImportFailureKind,
    rbd_image_name,
    upload_key_digest,
)
from virga_runtime import ServiceRunner
from virga_runtime.service import Emit
from virga_storage.config import StorageConfig
from virga_storage.core.model import ImageRecord, StorageState
from virga_storage.core.qcow2 import HEAD_BYTES, UnsafeImage, inspect_qcow2
from virga_storage.drivers.base import PoolFull, StorageDriver, StorageError, StorageUnavailable
from virga_storage.effects.images import UploadClaims
from virga_storage.qemu_img import QemuImg, QemuImgFailed, names_another_file
from virga_storage.spool import ImportSlots, SpoolBudget, SpoolFull, SpoolLease

log = structlog.get_logger(__name__)

UPLOAD_PATH = "/internal/images/{id}"
CHUNK = 1 << 20
REQUEST_WAIT_SECONDS = 15.0
"""How long an upload waits for the service to read the request the gateway just wrote."""
LEFTOVER_RETRY_SECONDS = 30.0
"""Longest pause between two attempts to remove a partial image while Ceph is away."""


async def remove_leftover(driver: StorageDriver, name: str) -> None:
    """Remove the partial image of an import the cluster cut off, retrying until it answers."""
    delay = 1.0
    while True:
        try:
            await driver.remove(name)
        except StorageError as error:
            log.warning("import_leftover_kept", image=name, reason=str(error))
            await asyncio.sleep(delay)
            delay = min(delay * 2, LEFTOVER_RETRY_SECONDS)
        else:
            log.info("import_leftover_removed", image=name)
            return


class ImportFailure(Exception):
    """The upload cannot become an image; `kind` as in `ImageImportFailed`."""

    def __init__(self, kind: ImportFailureKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


async def _spool(
    request: web.Request, path: Path, limit: int, lease: SpoolLease
) -> tuple[int, str]:
    """Write the body to `path`; (bytes, sha256). Refuses more than `limit` bytes, and more
    than the spool's cap leaves."""
    digest, size = hashlib.sha256(), 0
    with path.open("wb") as out:
        try:
            async for chunk in request.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ImportFailure("too_large", f"the image is larger than {limit} bytes")
                lease.take(len(chunk))
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
        except ImportFailure:
            raise
        except SpoolFull as error:
            raise ImportFailure("unavailable", f"{error}; try again later") from None
        except Exception as error:  # the client went away: nothing reached the pool
            raise ImportFailure("interrupted", f"the upload was cut off: {error!r}") from error
    if size == 0:
        raise ImportFailure("bad_data", "the image is empty")
    return size, digest.hexdigest()


def _head(path: Path) -> bytes:
    with path.open("rb") as source:
        return source.read(HEAD_BYTES)


async def _to_raw(
    image: ImageRecord, spool: Path, size: int, config: StorageConfig, lease: SpoolLease
) -> tuple[Path, int]:
    """The raw file to import and its size. A qcow2 upload is judged by its own header first
    (no backing or data file, no encryption, a virtual size within the limit), and only then
    given to a bounded, sandboxed qemu-img, which checks it again and converts it."""
    if image.disk_format == "raw":
        return spool, size
    try:
        facts = inspect_qcow2(await asyncio.to_thread(_head, spool))
    except UnsafeImage as unsafe:
        raise ImportFailure("bad_data", unsafe.reason) from None
    limit = config.max_virtual_bytes
    if facts.virtual_size > limit:
        raise ImportFailure(
            "too_large", f"its virtual size {facts.virtual_size} is above {limit} bytes"
        )
    try:
        lease.take(facts.virtual_size)
    except SpoolFull as error:
        raise ImportFailure("unavailable", f"{error}; try again later") from None
    qemu = QemuImg(spool.parent, config.qemu_img_limits)
    raw = spool.with_suffix(".raw")
    try:
        info = await qemu.info(spool.name)
        if names_another_file(info) or info.get("virtual-size") != facts.virtual_size:
            raise ImportFailure("bad_data", "qemu reads this qcow2 image otherwise than its header")
        await qemu.convert_to_raw(spool.name, raw.name, facts.virtual_size)
    except QemuImgFailed as error:
        raise ImportFailure("bad_data", str(error)) from None
    return raw, facts.virtual_size


def _key_matches(key: str | None, digest: str | None) -> bool:
    """Whether `key` is the one the request recorded the digest of; a request recorded
    without one takes no upload."""
    if key is None or digest is None:
        return False
    return hmac.compare_digest(upload_key_digest(key), digest)


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := await asyncio.to_thread(source.read, CHUNK):
            yield chunk


class ImageUploads:
    """The upload endpoint; `runner` is set once the service's runner exists."""

    def __init__(self, config: StorageConfig, driver: StorageDriver, claims: UploadClaims) -> None:
        self.config = config
        self.driver = driver
        self.claims = claims
        self.runner: ServiceRunner[StorageState] | None = None
        self.slots = ImportSlots(config.max_imports, config.import_wait_seconds)
        self.spool = SpoolBudget(config.spool_max_bytes)
        self.cleanups: set[asyncio.Task[None]] = set()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_put(UPLOAD_PATH, self.upload)

    async def _request(self, image_id: str) -> ImageRecord | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REQUEST_WAIT_SECONDS
        while True:
            runner = self.runner
            if runner is not None and runner.ready.is_set():
                image = runner.state.images.get(image_id)
                if image is not None or loop.time() > deadline:
                    return image
            elif loop.time() > deadline:
                return None
            await asyncio.sleep(0.05)

    async def upload(self, request: web.Request) -> web.Response:
        image_id = request.match_info["id"]
        image = await self._request(image_id)
        if image is None:
            return web.json_response({"error": f"no image request {image_id}"}, status=404)
        if not _key_matches(request.headers.get(UPLOAD_KEY_HEADER), image.upload_key_sha256):
            log.warning("image_upload_refused", image_id=image_id, reason="upload key")
            error = f"the {UPLOAD_KEY_HEADER} header does not match image {image_id}'s request"
            return web.json_response({"error": error}, status=403)
        if image.status != "importing" or not self.claims.claim(image_id, "upload"):
            return web.json_response({"error": f"image {image_id} is {image.status}"}, status=409)
        try:
            event: ImageImported | ImageImportFailed = await self._import(request, image)
        except ImportFailure as failure:
            event = ImageImportFailed(reason=failure.reason, kind=failure.kind)
        try:
            assert self.runner is not None
            await self.runner.append([Emit(event, image_id, image.tenant_id)])
        finally:
            self.claims.release(image_id)
        outcome = "imported" if isinstance(event, ImageImported) else "failed"
        log.info("image_upload", image_id=image_id, outcome=outcome)
        return web.json_response({"outcome": outcome})

    async def _import(self, request: web.Request, image: ImageRecord) -> ImageImported:
        async with self.slots.hold() as slot:
            if not slot:
                raise ImportFailure(
                    "unavailable",
                    "too many images are being imported at once on this storage host; "
                    "try again later",
                )
            with self.spool.lease() as lease:
                return await self._import_held(request, image, lease)

    async def _import_held(
        self, request: web.Request, image: ImageRecord, lease: SpoolLease
    ) -> ImageImported:
        config = self.config
        with tempfile.TemporaryDirectory(dir=config.spool_dir, prefix="virga-upload-") as d:
            spool = Path(d) / "upload"
            size, sha256 = await _spool(request, spool, config.image_max_bytes, lease)
            raw, raw_size = await _to_raw(image, spool, size, config, lease)
            if raw != spool:
                with contextlib.suppress(OSError):
                    os.unlink(spool)  # halves the disk an upload holds
            try:
                await self.driver.import_image(
                    rbd_image_name(image.image_id), _chunks(raw), raw_size
                )
            except PoolFull as error:
                raise ImportFailure("failed", str(error)) from error
            except StorageUnavailable as error:
                # The driver's own removal of the partial image failed as well, most likely.
                cleanup = asyncio.create_task(
                    remove_leftover(self.driver, rbd_image_name(image.image_id))
                )
                self.cleanups.add(cleanup)
                cleanup.add_done_callback(self.cleanups.discard)
                raise ImportFailure("unavailable", str(error)) from error
            except (StorageError, ValueError) as error:
                raise ImportFailure("failed", str(error)) from error
        return ImageImported(
            name=image.name, size_bytes=raw_size, sha256=sha256, visibility=image.visibility
        )
