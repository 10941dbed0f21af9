"""The qcow2 header check that runs before qemu-img ever opens an upload: images made by the
real qemu-img that name other files are refused, plain ones pass with their virtual size,
and no header, however mangled, makes it raise anything but `UnsafeImage`."""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.qcow2 import qemu_img_create

from virga_storage.core.qcow2 import (
    INCOMPATIBLE_DATA_FILE,
    UnsafeImage,
    inspect_qcow2,
)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return qemu_img_create(tmp_path_factory.mktemp("plain") / "plain.qcow2", "1M")


def test_a_plain_image_passes_with_its_virtual_size(plain: bytes, tmp_path: Path) -> None:
    facts = inspect_qcow2(plain)
    assert (facts.version, facts.virtual_size, facts.cluster_size) == (3, 1 << 20, 65536)
    old = qemu_img_create(tmp_path / "v2.qcow2", "2M", "-o", "compat=0.10")
    assert (inspect_qcow2(old).version, inspect_qcow2(old).virtual_size) == (2, 2 << 20)


def test_a_virtual_size_bomb_is_read_from_the_header(tmp_path: Path) -> None:
    head = qemu_img_create(tmp_path / "bomb.qcow2", "20T")
    assert inspect_qcow2(head).virtual_size == 20 << 40


def test_an_image_naming_an_external_data_file_is_refused(tmp_path: Path) -> None:
    # The data file is the test's own: `qemu-img create` truncates the file it names.
    head = qemu_img_create(
        tmp_path / "exploit.qcow2",
        "64K",
        "-o",
        f"data_file={tmp_path / 'secret'},data_file_raw=on",
    )
    with pytest.raises(UnsafeImage, match="external data file"):
        inspect_qcow2(head)


def test_the_data_file_extension_is_refused_even_without_its_feature_bit(tmp_path: Path) -> None:
    head = bytearray(
        qemu_img_create(tmp_path / "exploit.qcow2", "64K", "-o", f"data_file={tmp_path / 'x'}")
    )
    (incompatible,) = struct.unpack_from(">Q", head, 72)
    struct.pack_into(">Q", head, 72, incompatible & ~INCOMPATIBLE_DATA_FILE)
    with pytest.raises(UnsafeImage, match="external data file"):
        inspect_qcow2(bytes(head))


def test_an_image_naming_a_backing_file_is_refused(tmp_path: Path) -> None:
    backing = tmp_path / "base.raw"
    backing.write_bytes(bytes(1 << 20))
    head = qemu_img_create(tmp_path / "child.qcow2", "1M", "-b", str(backing), "-F", "raw")
    with pytest.raises(UnsafeImage, match="backing file"):
        inspect_qcow2(head)


def test_an_encrypted_image_is_refused(tmp_path: Path) -> None:
    head = qemu_img_create(
        tmp_path / "secret.qcow2",
        "1M",
        "--object",
        "secret,id=s0,data=hunter2",
        "-o",
        "encrypt.format=luks,encrypt.key-secret=s0",
    )
    with pytest.raises(UnsafeImage, match="encrypted"):
        inspect_qcow2(head)


@pytest.mark.parametrize(
    ("offset", "value", "reason"),
    [
        (0, b"QFI\xfa", "no qcow2 magic"),
        (4, struct.pack(">I", 4), "version 4"),
        (8, struct.pack(">Q", 512), "backing file"),
        (20, struct.pack(">I", 40), "cluster size"),
        (32, struct.pack(">I", 1), "encrypted"),
        (72, struct.pack(">Q", 1 << 1), "marked corrupt"),
        (72, struct.pack(">Q", 1 << 9), "unknown incompatible"),
        (100, struct.pack(">I", 1 << 20), "header length"),
    ],
)
def test_each_field_that_makes_an_image_unsafe_is_named(
    plain: bytes, offset: int, value: bytes, reason: str
) -> None:
    head = bytearray(plain)
    head[offset : offset + len(value)] = value
    with pytest.raises(UnsafeImage, match=reason):
        inspect_qcow2(bytes(head))


def test_a_short_or_unterminated_header_is_refused(plain: bytes) -> None:
    with pytest.raises(UnsafeImage, match="too short"):
        inspect_qcow2(plain[:40])
    with pytest.raises(UnsafeImage, match="run past the first cluster"):
        inspect_qcow2(plain[:112])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(st.integers(0, 1023), st.binary(min_size=1, max_size=8)), min_size=1, max_size=6
    )
)
def test_a_mangled_header_is_judged_never_crashes_and_never_names_a_file(
    plain: bytes, edits: list[tuple[int, bytes]]
) -> None:
    head = bytearray(plain)
    for offset, value in edits:
        head[offset : offset + len(value)] = value
    try:
        facts = inspect_qcow2(bytes(head))
    except UnsafeImage:
        return
    backing_offset, backing_size = struct.unpack_from(">QI", head, 8)
    assert (backing_offset, backing_size) == (0, 0)
    if facts.version == 3:
        (incompatible,) = struct.unpack_from(">Q", head, 72)
        assert not incompatible & INCOMPATIBLE_DATA_FILE


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=256))
def test_any_bytes_after_the_magic_are_judged_without_a_crash(body: bytes) -> None:
    with contextlib.suppress(UnsafeImage):
        inspect_qcow2(b"QFI\xfb" + body)
