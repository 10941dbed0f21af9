"""The storage driver contract: value types, errors and the `StorageDriver` protocol.

RBD knows one kind of object, the image; Virga's images (what instances boot from) and
volumes (their disks, usually copy-on-write clones of an image's `base` snapshot) are both
RBD images in one pool, so one value type, `ImageInfo`, describes either.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

BASE_SNAPSHOT = "base"
"""The protected snapshot `import_image` makes; volumes are cloned from it."""

# '@' would name an RBD snapshot and '/' a pool or namespace, so neither may hide in a name.
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")


def check_name(name: str, what: str = "image") -> str:
    """Return `name` if it is a safe RBD image or snapshot name, else raise ValueError."""
    if _NAME.fullmatch(name) is None or name in (".", ".."):
        raise ValueError(f"bad {what} name {name!r}")
    return name


def check_size(size_bytes: int) -> int:
    """Return `size_bytes` if it is a positive size, else raise ValueError."""
    if size_bytes <= 0:
        raise ValueError(f"size must be positive, got {size_bytes}")
    return size_bytes


class StorageError(Exception):
    """A storage driver operation failed; the message says which and why."""


class StorageUnavailable(StorageError):
    """The cluster cannot be reached; the operation may be retried once it is back."""


class ImageNotFound(StorageError):
    """No image (or, for `SnapshotNotFound`, no snapshot) has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name!r} not found")
        self.name = name


class SnapshotNotFound(ImageNotFound):
    """The image exists but has no snapshot of this name; `name` is ``image@snapshot``."""


class ImageExists(StorageError):
    """An image of this name exists and is not the one the call would have made."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"image {name!r} already exists: {detail}")
        self.name = name


class HasChildren(StorageError):
    """Refused: copy-on-write clones still depend on the image's snapshots."""

    def __init__(self, name: str, children: list[str]) -> None:
        super().__init__(f"{name!r} has clone children: {', '.join(children)}")
        self.name = name
        self.children = children


class ShrinkRefused(StorageError):
    """Refused: a size below the current one would cut off the guest's data."""

    def __init__(self, name: str, size_bytes: int, requested_bytes: int) -> None:
        super().__init__(
            f"{name!r} is {size_bytes} bytes; shrinking to {requested_bytes} is refused"
        )
        self.name = name
        self.size_bytes = size_bytes
        self.requested_bytes = requested_bytes


class PoolFull(StorageError):
    """The pool has no space left for the data this call would write."""


@dataclass(frozen=True, slots=True)
class ParentRef:
    """The snapshot a copy-on-write clone reads unwritten blocks from."""

    pool: str
    """Pool of the parent image."""
    image: str
    """Name of the parent image."""
    snapshot: str
    """Name of the parent's snapshot the clone was made from."""

    def __str__(self) -> str:
        return f"{self.pool}/{self.image}@{self.snapshot}"


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """One snapshot of an image."""

    name: str
    """Snapshot name."""
    protected: bool
    """Whether the snapshot is protected (clones may be made from it)."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the cluster says about one image (a Virga image or a volume)."""

    name: str
    """Image name in the driver's pool; derived from a Virga id, never user-chosen."""
    size_bytes: int
    """Provisioned size in bytes (thin: not the space used)."""
    parent: ParentRef | None
    """The snapshot this image is a clone of; None for an independent image."""
    snapshots: tuple[SnapshotInfo, ...]
    """Its snapshots, sorted by name."""


class StorageDriver(Protocol):
    """How the storage service drives a block store, one pool per driver.

    Every mutating method is safe to repeat: the service replays its decisions after a crash
    with names derived from ids, so a second call with the same arguments finds the work done
    and succeeds. Any method may raise `StorageUnavailable`; the call then had no effect or an
    effect a retry completes. Bad names or sizes raise ValueError before anything is done.
    """

    async def close(self) -> None:
        """Release the connection; further calls raise `StorageUnavailable`."""
        ...

    async def import_image(self, name: str, chunks: AsyncIterator[bytes], size_bytes: int) -> None:
        """Create image `name` of `size_bytes`, write `chunks` from offset 0, then create and
        protect its `base` snapshot.

        Idempotent: an image that already has a `base` snapshot is complete and left as it is
        (the chunks are not read). An image without one is left over from an interrupted
        import and is made again. If this fails, the partial image is removed. Raises
        ValueError when the chunks hold more than `size_bytes`, `PoolFull` when the data
        does not fit.
        """
        ...

    async def clone(self, image: str, snapshot: str, name: str, size_bytes: int) -> None:
        """Make `name` a copy-on-write clone of `image@snapshot`, grown to `size_bytes`.

        Idempotent: an existing `name` cloned from that snapshot is done (and grown if
        smaller). Raises `ImageNotFound`/`SnapshotNotFound` for a missing parent,
        `ImageExists` if `name` exists with another parent, `ShrinkRefused` if `size_bytes`
        is below the snapshot's size. A clone this call made is removed again if growing it
        fails.
        """
        ...

    async def create_volume(self, name: str, size_bytes: int) -> None:
        """Create an empty image of `size_bytes`.

        Idempotent: an existing independent image of at least that size is done (it may have
        been grown since). Raises `ImageExists` if `name` is a clone or smaller.
        """
        ...

    async def resize(self, name: str, size_bytes: int) -> None:
        """Grow the image to `size_bytes`; the same size is a no-op.

        Raises `ShrinkRefused` for a smaller size, `ImageNotFound`.
        """
        ...

    async def snapshot(self, name: str, snapshot: str) -> None:
        """Create and protect snapshot `snapshot` of image `name`.

        Idempotent: an existing snapshot is protected if it is not yet. Raises `ImageNotFound`.
        """
        ...

    async def flatten(self, name: str) -> None:
        """Copy every block the clone still reads from its parent, then drop the parent link.

        Idempotent: an image without parent is left as it is. Raises `ImageNotFound`.
        """
        ...

    async def remove(self, name: str, *, fence: bool = False) -> None:
        """Remove the image with all its snapshots.

        Idempotent: a missing image is no error. Raises `HasChildren` naming every clone of
        any of its snapshots; then nothing was removed. `fence` first breaks any other
        client's exclusive lock on the image, cutting that client off (Ceph blocklists it),
        instead of waiting until the cluster notices a dead writer: only for images no guest
        uses, such as the partial import of a crashed storage service.
        """
        ...

    async def fence(self, name: str) -> bool:
        """Break every other client's exclusive lock on the image (and blocklist any other
        client that has it open), so that client can no longer write to it: an evacuation's
        fence of a dead host's guest. True when a lock was broken.

        Idempotent: a missing image or one nobody holds is no error (False).
        """
        ...

    async def remove_snapshot(self, name: str, snapshot: str) -> None:
        """Unprotect and remove one snapshot.

        Idempotent: a missing image or snapshot is no error. Raises `HasChildren` naming the
        clones made from it; then nothing was removed.
        """
        ...

    async def children(self, name: str, snapshot: str) -> list[str]:
        """Names of the clones of `name@snapshot`, sorted; ``pool/name`` for another pool.

        Raises `ImageNotFound`/`SnapshotNotFound`.
        """
        ...

    async def info(self, name: str) -> ImageInfo:
        """Size, parent and snapshots of one image. Raises `ImageNotFound`."""
        ...

    async def list(self) -> list[str]:
        """Names of every image in the pool, sorted."""
        ...

    async def clone_depth(self, name: str) -> int:
        """How many parents lie above the image: 0 for an independent one, 1 for a clone of
        one, and so on. Raises `ImageNotFound`."""
        ...
