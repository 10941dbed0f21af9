"""`StorageDriver` on Ceph's own Python bindings (`rados`, `rbd`), one pool per driver.

Every call runs on the one thread of its `RbdConnection` (see there why). Image data is
streamed: each chunk is read on the loop and written on that thread, so an import never
holds the whole image in memory.

Clone v2 (the cluster requires mimic clients) lets Ceph remove a snapshot that still has
clones by moving it to a trash namespace, and unprotect it too. Virga wants neither: so
children are looked up before any snapshot is unprotected or removed, and `HasChildren`
refuses the call.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import time
from collections.abc import AsyncIterator
from typing import Any

import rbd

from virga_storage.drivers.base import (
    BASE_SNAPSHOT,
    HasChildren,
    ImageExists,
    ImageInfo,
    ImageNotFound,
    ParentRef,
    PoolFull,
    ShrinkRefused,
    SnapshotInfo,
    SnapshotNotFound,
    StorageError,
    check_name,
    check_size,
)
from virga_storage.drivers.rbd_connection import RbdConnection

FENCE_WAIT = 35
"""Seconds a fenced removal waits for the cut-off client's watch to go (past the 30 s after
which the OSDs drop a dead client's watch by themselves)."""


@functools.lru_cache(maxsize=4)
def _zeros(length: int) -> bytes:
    return bytes(length)


class RbdDriver(RbdConnection):
    """`StorageDriver` for one pool of a Ceph cluster; `await connect()` before use."""

    # -- plumbing -------------------------------------------------------------------------

    def _open(self, name: str, snapshot: str | None = None, *, read_only: bool = False) -> Any:
        try:
            return rbd.Image(self._io(), name, snapshot=snapshot, read_only=read_only)
        except rbd.ImageNotFound as error:
            if snapshot is not None and name in rbd.RBD().list(self._io()):
                raise SnapshotNotFound(f"{name}@{snapshot}") from error
            raise ImageNotFound(name) from error

    @staticmethod
    def _parent(image: Any) -> ParentRef | None:
        try:
            spec = image.get_parent_image_spec()
        except rbd.ImageNotFound:
            return None
        return ParentRef(str(spec["pool_name"]), str(spec["image_name"]), str(spec["snap_name"]))

    def _children_of(self, image: Any, snapshot: str) -> builtins.list[str]:
        image.set_snap(snapshot)
        try:
            found = [
                child["image"]
                if child["pool"] == self.pool
                else f"{child['pool']}/{child['image']}"
                for child in image.list_children2()
                if not child["trash"]
            ]
        finally:
            image.set_snap(None)
        return sorted(found)

    def _all_children(self, image: Any) -> builtins.list[str]:
        return sorted(
            {
                child
                for snap in image.list_snaps()
                for child in self._children_of(image, snap["name"])
            }
        )

    # -- blocking operations, run on the driver's thread ----------------------------------

    def _prepare_import(self, name: str, size_bytes: int) -> Any | None:
        """The opened new image to write to, or None when a complete import exists."""
        try:
            with rbd.Image(self._io(), name, read_only=True) as image:
                if any(snap["name"] == BASE_SNAPSHOT for snap in image.list_snaps()):
                    return None
        except rbd.ImageNotFound:
            pass
        else:
            self._remove(name)  # left over from an interrupted import
        rbd.RBD().create(self._io(), name, size_bytes)
        return rbd.Image(self._io(), name)

    @staticmethod
    def _write(image: Any, data: bytes, offset: int) -> None:
        image.write(data, offset)

    def _finish_import(self, image: Any, name: str) -> None:
        try:
            image.flush()
            image.create_snap(BASE_SNAPSHOT)
            image.protect_snap(BASE_SNAPSHOT)
        except BaseException:
            self._abort_import(image, name)
            raise
        image.close()

    def _abort_import(self, image: Any, name: str) -> None:
        image.close()
        self._remove(name)

    def _clone(self, image: str, snapshot: str, name: str, size_bytes: int) -> None:
        with self._open(image, snapshot, read_only=True) as source:
            source_size = int(source.size())
        parent = ParentRef(self.pool, image, snapshot)
        try:
            with rbd.Image(self._io(), name) as existing:
                found = self._parent(existing)
                if found != parent:
                    raise ImageExists(name, f"its parent is {found}, not {parent}")
                if size_bytes < source_size:
                    raise ShrinkRefused(name, source_size, size_bytes)
                if existing.size() < size_bytes:
                    existing.resize(size_bytes)
                return
        except rbd.ImageNotFound:
            pass
        if size_bytes < source_size:
            raise ShrinkRefused(name, source_size, size_bytes)
        rbd.RBD().clone(self._io(), image, snapshot, self._io(), name)
        try:
            if size_bytes > source_size:
                with rbd.Image(self._io(), name) as clone:
                    clone.resize(size_bytes)
        except BaseException:
            rbd.RBD().remove(self._io(), name)
            raise

    def _create_volume(self, name: str, size_bytes: int) -> None:
        try:
            rbd.RBD().create(self._io(), name, size_bytes)
        except rbd.ImageExists:
            with self._open(name, read_only=True) as existing:
                parent = self._parent(existing)
                if parent is not None:
                    raise ImageExists(name, f"it is a clone of {parent}") from None
                if existing.size() < size_bytes:
                    detail = f"it has {existing.size()} bytes, not {size_bytes}"
                    raise ImageExists(name, detail) from None

    def _resize(self, name: str, size_bytes: int) -> None:
        with self._open(name) as image:
            current = int(image.size())
            if size_bytes < current:
                raise ShrinkRefused(name, current, size_bytes)
            if size_bytes > current:
                if self._pool_full():
                    raise PoolFull(f"pool {self.pool!r} is full: cannot grow {name!r}")
                image.resize(size_bytes)

    def _snapshot(self, name: str, snapshot: str) -> None:
        with self._open(name) as image:
            if not any(snap["name"] == snapshot for snap in image.list_snaps()):
                image.create_snap(snapshot)
            if not image.is_protected_snap(snapshot):
                image.protect_snap(snapshot)

    def _flatten(self, name: str) -> None:
        with self._open(name) as image:
            if self._parent(image) is not None:
                image.flatten()

    def _remove(self, name: str, fence: bool = False) -> None:
        try:
            image = rbd.Image(self._io(), name)
        except rbd.ImageNotFound:
            return
        with image:
            if fence:
                self._fence(image)
            children = self._all_children(image)
            if children:
                raise HasChildren(name, children)
            for snap in list(image.list_snaps()):
                if image.is_protected_snap(snap["name"]):
                    image.unprotect_snap(snap["name"])
                image.remove_snap(snap["name"])
        with contextlib.suppress(rbd.ImageNotFound):  # removed meanwhile: as good
            rbd.RBD().remove(self._io(), name)

    def _fence_image(self, name: str) -> bool:
        try:
            image = rbd.Image(self._io(), name)
        except rbd.ImageNotFound:
            return False
        with image:
            held = bool(list(image.lock_get_owners()))
            self._fence(image)
            return held

    def _remove_snapshot(self, name: str, snapshot: str) -> None:
        try:
            image = rbd.Image(self._io(), name)
        except rbd.ImageNotFound:
            return
        with image:
            if not any(snap["name"] == snapshot for snap in image.list_snaps()):
                return
            children = self._children_of(image, snapshot)
            if children:
                raise HasChildren(f"{name}@{snapshot}", children)
            if image.is_protected_snap(snapshot):
                image.unprotect_snap(snapshot)
            image.remove_snap(snapshot)

    def _children(self, name: str, snapshot: str) -> builtins.list[str]:
        with self._open(name, snapshot, read_only=True) as image:
            return self._children_of(image, snapshot)

    def _info(self, name: str) -> ImageInfo:
        with self._open(name, read_only=True) as image:
            try:
                snapshots = tuple(
                    sorted(
                        (
                            SnapshotInfo(
                                str(snap["name"]), bool(image.is_protected_snap(snap["name"]))
                            )
                            for snap in image.list_snaps()
                        ),
                        key=lambda snap: snap.name,
                    )
                )
            except rbd.ImageNotFound as error:  # removed while we read it
                raise ImageNotFound(name) from error
            return ImageInfo(name, int(image.size()), self._parent(image), snapshots)

    def _list(self) -> builtins.list[str]:
        return sorted(str(name) for name in rbd.RBD().list(self._io()))

    def _clone_depth(self, name: str) -> int:
        depth = 0
        with self._open(name, read_only=True) as image:
            parent = self._parent(image)
        while parent is not None:
            depth += 1
            if parent.pool != self.pool:
                # Virga never clones across pools; count the link without following it.
                return depth
            with self._open(parent.image, read_only=True) as image:
                parent = self._parent(image)
        return depth

    def _read(self, name: str, offset: int, length: int) -> bytes:
        with self._open(name, read_only=True) as image:
            return bytes(image.read(offset, length))

    # -- StorageDriver --------------------------------------------------------------------

    async def read(self, name: str, offset: int, length: int) -> bytes:
        """The image's bytes as a guest reads them (clones read through their parent); for
        tests and tools, not part of the contract."""
        return await self._call(self._read, check_name(name), offset, length)

    async def import_image(self, name: str, chunks: AsyncIterator[bytes], size_bytes: int) -> None:
        check_name(name)
        check_size(size_bytes)
        image = await self._call(self._prepare_import, name, size_bytes)
        if image is None:
            return
        try:
            offset = 0
            async for chunk in chunks:
                if offset + len(chunk) > size_bytes:
                    raise ValueError(f"image data is larger than its size of {size_bytes} bytes")
                # A new image reads as zeros: writing zeros would only allocate objects (a
                # qcow2 converted to raw is mostly holes).
                if chunk != _zeros(len(chunk)):
                    await self._call(self._write, image, chunk, offset)
                offset += len(chunk)
        except BaseException:
            await asyncio.shield(self._call(self._abort_import, image, name))
            raise
        await self._call(self._finish_import, image, name)

    async def clone(self, image: str, snapshot: str, name: str, size_bytes: int) -> None:
        check_name(image)
        check_name(snapshot, "snapshot")
        check_name(name)
        check_size(size_bytes)
        await self._call(self._clone, image, snapshot, name, size_bytes)

    async def create_volume(self, name: str, size_bytes: int) -> None:
        await self._call(self._create_volume, check_name(name), check_size(size_bytes))

    async def resize(self, name: str, size_bytes: int) -> None:
        await self._call(self._resize, check_name(name), check_size(size_bytes))

    async def snapshot(self, name: str, snapshot: str) -> None:
        await self._call(self._snapshot, check_name(name), check_name(snapshot, "snapshot"))

    async def flatten(self, name: str) -> None:
        await self._call(self._flatten, check_name(name))

    async def fence(self, name: str) -> bool:
        result: bool = await self._call(self._fence_image, check_name(name))
        return result

    async def remove(self, name: str, *, fence: bool = False) -> None:
        check_name(name)
        deadline = time.monotonic() + FENCE_WAIT
        while True:
            try:
                await self._call(self._remove, name, fence)
                return
            except StorageError as error:
                # A fenced client's watch lasts until the OSDs have seen the blocklist.
                busy = isinstance(error.__cause__, rbd.ImageBusy)
                if not (fence and busy) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.25)

    async def remove_snapshot(self, name: str, snapshot: str) -> None:
        await self._call(self._remove_snapshot, check_name(name), check_name(snapshot, "snapshot"))

    async def children(self, name: str, snapshot: str) -> builtins.list[str]:
        return await self._call(self._children, check_name(name), check_name(snapshot, "snapshot"))

    async def info(self, name: str) -> ImageInfo:
        return await self._call(self._info, check_name(name))

    async def list(self) -> builtins.list[str]:
        return await self._call(self._list)

    async def clone_depth(self, name: str) -> int:
        return await self._call(self._clone_depth, check_name(name))
