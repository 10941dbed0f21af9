"""An in-process `StorageDriver` with RBD's semantics, for fast tests of the storage service.

It passes the same contract suite as `RbdDriver`, and adds hooks a real cluster cannot offer
on demand: a failing call, a full pool and an outage.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

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
    StorageUnavailable,
    check_name,
    check_size,
)


@dataclass
class _Snapshot:
    size_bytes: int
    content: bytes
    protected: bool = False


@dataclass
class _Image:
    size_bytes: int
    content: bytes = b""
    """The written prefix of the image; the rest reads as zeros."""
    parent: ParentRef | None = None
    snapshots: dict[str, _Snapshot] = field(default_factory=dict)


class MemoryStorageDriver:
    """`StorageDriver` over a dict of images, as one RBD pool holds them."""

    def __init__(self, pool: str = "rbd") -> None:
        self.pool = pool
        self._images: dict[str, _Image] = {}
        self._failures: dict[str, StorageError] = {}
        self.locked: dict[str, bool] = {}
        """Images some other client holds the exclusive lock of (as a running guest does)."""
        self._available = True
        self._full = False

    # -- test hooks -----------------------------------------------------------------------

    def fail_next(self, operation: str, error: StorageError) -> None:
        """The next call of `operation` (a method name) raises `error` and changes nothing."""
        self._failures[operation] = error

    def set_available(self, available: bool) -> None:
        """Simulate the cluster going away (every call raises) and coming back."""
        self._available = available

    def set_pool_full(self, full: bool) -> None:
        """While full, calls that would write data or metadata raise `PoolFull`."""
        self._full = full

    def read(self, name: str, offset: int, length: int) -> bytes:
        """The image's bytes as a guest would read them (clones read through their parent)."""
        image = self._require(name)
        end = min(offset + length, image.size_bytes)
        data = image.content[offset:end]
        return data + bytes(max(end - offset - len(data), 0))

    # -- helpers --------------------------------------------------------------------------

    def _enter(self, operation: str, *, writes: bool = False) -> None:
        if not self._available:
            raise StorageUnavailable("memory cluster is marked unavailable")
        failure = self._failures.pop(operation, None)
        if failure is not None:
            raise failure
        if writes and self._full:
            raise PoolFull(f"pool {self.pool!r} is full")

    def _require(self, name: str) -> _Image:
        image = self._images.get(check_name(name))
        if image is None:
            raise ImageNotFound(name)
        return image

    def _children(self, name: str, snapshot: str | None = None) -> builtins.list[str]:
        return sorted(
            child
            for child, image in self._images.items()
            if image.parent is not None
            and image.parent.pool == self.pool
            and image.parent.image == name
            and (snapshot is None or image.parent.snapshot == snapshot)
        )

    # -- StorageDriver --------------------------------------------------------------------

    async def close(self) -> None:
        self._available = False

    async def import_image(self, name: str, chunks: AsyncIterator[bytes], size_bytes: int) -> None:
        self._enter("import_image", writes=True)
        check_name(name)
        check_size(size_bytes)
        existing = self._images.get(name)
        if existing is not None and BASE_SNAPSHOT in existing.snapshots:
            return
        if existing is not None:
            await self.remove(name)  # left over from an interrupted import
        written = bytearray()
        async for chunk in chunks:
            written += chunk
            if len(written) > size_bytes:
                raise ValueError(f"image data is larger than its size of {size_bytes} bytes")
        content = bytes(written)
        self._images[name] = _Image(
            size_bytes,
            content,
            snapshots={BASE_SNAPSHOT: _Snapshot(size_bytes, content, protected=True)},
        )

    async def clone(self, image: str, snapshot: str, name: str, size_bytes: int) -> None:
        self._enter("clone", writes=True)
        check_name(snapshot, "snapshot")
        check_name(name)
        check_size(size_bytes)
        source = self._require(image).snapshots.get(snapshot)
        if source is None:
            raise SnapshotNotFound(f"{image}@{snapshot}")
        parent = ParentRef(self.pool, image, snapshot)
        existing = self._images.get(name)
        if existing is not None and existing.parent != parent:
            raise ImageExists(name, f"its parent is {existing.parent}, not {parent}")
        if size_bytes < source.size_bytes:
            raise ShrinkRefused(name, source.size_bytes, size_bytes)
        if existing is None:
            existing = _Image(source.size_bytes, source.content, parent=parent)
            self._images[name] = existing
        existing.size_bytes = max(existing.size_bytes, size_bytes)

    async def create_volume(self, name: str, size_bytes: int) -> None:
        self._enter("create_volume", writes=True)
        check_name(name)
        check_size(size_bytes)
        existing = self._images.get(name)
        if existing is None:
            self._images[name] = _Image(size_bytes)
        elif existing.parent is not None:
            raise ImageExists(name, f"it is a clone of {existing.parent}")
        elif existing.size_bytes < size_bytes:
            raise ImageExists(name, f"it has {existing.size_bytes} bytes, not {size_bytes}")

    async def resize(self, name: str, size_bytes: int) -> None:
        self._enter("resize", writes=True)
        check_size(size_bytes)
        image = self._require(name)
        if size_bytes < image.size_bytes:
            raise ShrinkRefused(name, image.size_bytes, size_bytes)
        image.size_bytes = size_bytes

    async def snapshot(self, name: str, snapshot: str) -> None:
        self._enter("snapshot", writes=True)
        check_name(snapshot, "snapshot")
        image = self._require(name)
        taken = image.snapshots.setdefault(snapshot, _Snapshot(image.size_bytes, image.content))
        taken.protected = True

    async def flatten(self, name: str) -> None:
        self._enter("flatten", writes=True)
        # Its content already holds what it read through the parent: dropping the link is all.
        self._require(name).parent = None

    async def remove(self, name: str, *, fence: bool = False) -> None:
        self._enter("remove")
        if check_name(name) not in self._images:
            return
        children = self._children(name)
        if children:
            raise HasChildren(name, children)
        del self._images[name]

    async def fence(self, name: str) -> bool:
        self._enter("fence")
        return check_name(name) in self._images and self.locked.pop(name, False)

    async def remove_snapshot(self, name: str, snapshot: str) -> None:
        self._enter("remove_snapshot")
        check_name(snapshot, "snapshot")
        image = self._images.get(check_name(name))
        if image is None or snapshot not in image.snapshots:
            return
        children = self._children(name, snapshot)
        if children:
            raise HasChildren(f"{name}@{snapshot}", children)
        del image.snapshots[snapshot]

    async def children(self, name: str, snapshot: str) -> builtins.list[str]:
        self._enter("children")
        if snapshot not in self._require(name).snapshots:
            raise SnapshotNotFound(f"{name}@{snapshot}")
        return self._children(name, snapshot)

    async def info(self, name: str) -> ImageInfo:
        self._enter("info")
        image = self._require(name)
        snapshots = tuple(
            SnapshotInfo(snap, taken.protected) for snap, taken in sorted(image.snapshots.items())
        )
        return ImageInfo(name, image.size_bytes, image.parent, snapshots)

    async def list(self) -> builtins.list[str]:
        self._enter("list")
        return sorted(self._images)

    async def clone_depth(self, name: str) -> int:
        self._enter("clone_depth")
        depth = 0
        image = self._require(name)
        while image.parent is not None:
            depth += 1
            image = self._require(image.parent.image)
        return depth
