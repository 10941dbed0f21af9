"""The storage driver's value types and the name and size rules every driver applies."""

from __future__ import annotations

import pytest

from virga_storage.drivers.base import (
    HasChildren,
    ImageInfo,
    ImageNotFound,
    ParentRef,
    ShrinkRefused,
    SnapshotInfo,
    SnapshotNotFound,
    StorageError,
    check_name,
    check_size,
)


def test_parent_reads_as_rbd_spells_it() -> None:
    assert str(ParentRef("rbd", "img-1", "base")) == "rbd/img-1@base"


def test_image_info_is_a_comparable_value() -> None:
    info = ImageInfo("vol-1", 1024, ParentRef("rbd", "img-1", "base"), ())
    assert info == ImageInfo("vol-1", 1024, ParentRef("rbd", "img-1", "base"), ())
    assert info != ImageInfo("vol-1", 1024, None, ())
    assert SnapshotInfo("s1", protected=True) != SnapshotInfo("s1", protected=False)
    with pytest.raises(AttributeError):
        info.size_bytes = 2048  # type: ignore[misc]


@pytest.mark.parametrize("name", ["vol-1", "img_2.raw", "a" * 200, "0"])
def test_good_names_pass(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a@b", "a b", "é", "a" * 201, "a\n"])
def test_names_that_would_mean_something_else_to_rbd_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="bad snapshot name"):
        check_name(name, "snapshot")


@pytest.mark.parametrize("size", [0, -1])
def test_sizes_must_be_positive(size: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        check_size(size)
    assert check_size(1) == 1


def test_errors_name_what_failed() -> None:
    refused = HasChildren("img-1", ["vol-1", "vol-2"])
    assert isinstance(refused, StorageError)
    assert str(refused) == "'img-1' has clone children: vol-1, vol-2"
    assert refused.children == ["vol-1", "vol-2"]
    shrink = ShrinkRefused("vol-1", 2048, 1024)
    assert "2048" in str(shrink)
    assert "1024" in str(shrink)
    missing = SnapshotNotFound("img-1@s1")
    assert isinstance(missing, ImageNotFound)
    assert missing.name == "img-1@s1"
