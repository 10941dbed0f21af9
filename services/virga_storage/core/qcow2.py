"""What a qcow2 image's own header says, read by Virga before qemu ever opens the file.

A qcow2 file may name other files that qemu then reads as part of the image: a backing file
(its header's `backing_file_offset`) or an external data file (incompatible feature bit 2 and
the `DATA` header extension). A tenant's upload that names `/etc/ceph/ceph.client.admin.keyring`
would have qemu copy that file into the tenant's image. qemu offers no option that turns the
data file off (`"backing": null` covers only the backing file), so the header is judged here,
in Python, the way OpenStack's image format inspector does, and such an image never reaches
qemu. The same reading gives the virtual size, so an image declaring 20 TiB is refused before
any conversion.

The layout is qemu's `docs/interop/qcow2.txt`: big-endian fields, a 72-byte version 2 header or
a longer version 3 one, then header extensions up to the end of the first cluster.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

MAGIC: Final = b"QFI\xfb"
HEAD_BYTES: Final = 2 << 20
"""How much of the file to read: the header and its extensions fit in the first cluster,
which is at most 2 MiB."""

_V2 = struct.Struct(">4sIQIIQIIQQIIQ")
"""magic, version, backing_file_offset, backing_file_size, cluster_bits, size, crypt_method,
l1_size, l1_table_offset, refcount_table_offset, refcount_table_clusters, nb_snapshots,
snapshots_offset: 72 bytes."""
_V3 = struct.Struct(">QQQII")
"""incompatible_features, compatible_features, autoclear_features, refcount_order,
header_length: bytes 72 to 104 of a version 3 header."""
_EXTENSION = struct.Struct(">II")

INCOMPATIBLE_DIRTY: Final = 1 << 0
INCOMPATIBLE_CORRUPT: Final = 1 << 1
INCOMPATIBLE_DATA_FILE: Final = 1 << 2
INCOMPATIBLE_COMPRESSION_TYPE: Final = 1 << 3
INCOMPATIBLE_EXTENDED_L2: Final = 1 << 4
_KNOWN_INCOMPATIBLE: Final = (
    INCOMPATIBLE_DIRTY
    | INCOMPATIBLE_CORRUPT
    | INCOMPATIBLE_DATA_FILE
    | INCOMPATIBLE_COMPRESSION_TYPE
    | INCOMPATIBLE_EXTENDED_L2
)

EXTENSION_END: Final = 0x00000000
EXTENSION_DATA_FILE: Final = 0x44415441
EXTENSION_FULL_DISK_ENCRYPTION: Final = 0x0537BE77


class UnsafeImage(ValueError):
    """The upload is not a qcow2 image Virga will hand to qemu; `reason` says why, for the
    tenant (it names no path of this host)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Qcow2Facts:
    """What the header of an acceptable qcow2 image says."""

    version: int
    virtual_size: int
    """Bytes of the disk the image describes (its raw size once converted)."""
    cluster_size: int


def inspect_qcow2(head: bytes) -> Qcow2Facts:
    """Judge the first bytes of an upload (`HEAD_BYTES` of them, or the whole file when it is
    shorter). Raises `UnsafeImage` for anything that is not a plain, self-contained qcow2:
    a backing file, an external data file, encryption, a corrupt mark, unknown incompatible
    features, or a header that does not fit its first cluster."""
    if len(head) < _V2.size:
        raise UnsafeImage("the file is too short to be a qcow2 image")
    (magic, version, backing_offset, backing_size, cluster_bits, size, crypt_method) = (
        _V2.unpack_from(head)[:7]
    )
    if magic != MAGIC:
        raise UnsafeImage("the file is not a qcow2 image (no qcow2 magic)")
    if version not in (2, 3):
        raise UnsafeImage(f"qcow2 version {version} is not supported (2 and 3 are)")
    if backing_offset or backing_size:
        raise UnsafeImage("a qcow2 image that names a backing file is refused")
    if not 9 <= cluster_bits <= 21:
        raise UnsafeImage(f"its cluster size (2^{cluster_bits}) is not a valid qcow2 one")
    if crypt_method:
        raise UnsafeImage("an encrypted qcow2 image is refused")
    if size >= 1 << 63:
        raise UnsafeImage("its virtual size is out of range")
    cluster_size = 1 << cluster_bits
    extensions_at = _V2.size
    if version == 3:
        extensions_at = _judge_v3(head, cluster_size)
    _judge_extensions(head, extensions_at, min(cluster_size, len(head)))
    return Qcow2Facts(version=version, virtual_size=size, cluster_size=cluster_size)


def _judge_v3(head: bytes, cluster_size: int) -> int:
    """Check a version 3 header's feature bits; where its extensions start."""
    if len(head) < _V2.size + _V3.size:
        raise UnsafeImage("its qcow2 version 3 header is truncated")
    incompatible, _, _, refcount_order, header_length = _V3.unpack_from(head, _V2.size)
    if incompatible & INCOMPATIBLE_DATA_FILE:
        raise UnsafeImage("a qcow2 image that names an external data file is refused")
    if incompatible & INCOMPATIBLE_CORRUPT:
        raise UnsafeImage("the qcow2 image is marked corrupt")
    unknown = incompatible & ~_KNOWN_INCOMPATIBLE
    if unknown:
        raise UnsafeImage(f"it uses unknown incompatible qcow2 features (bits {unknown:#x})")
    if refcount_order > 6:
        raise UnsafeImage(f"its refcount order {refcount_order} is not a valid qcow2 one")
    if not _V2.size + _V3.size <= header_length <= cluster_size or header_length % 8:
        raise UnsafeImage(f"its header length {header_length} is not a valid qcow2 one")
    return int(header_length)


def _judge_extensions(head: bytes, at: int, end: int) -> None:
    """Walk the header extensions up to their end marker, which must lie within `end`."""
    while True:
        if at + _EXTENSION.size > end:
            raise UnsafeImage("its qcow2 header extensions run past the first cluster")
        kind, length = _EXTENSION.unpack_from(head, at)
        if kind == EXTENSION_END:
            return
        if kind == EXTENSION_DATA_FILE:
            raise UnsafeImage("a qcow2 image that names an external data file is refused")
        if kind == EXTENSION_FULL_DISK_ENCRYPTION:
            raise UnsafeImage("an encrypted qcow2 image is refused")
        at += _EXTENSION.size + (length + 7) // 8 * 8
