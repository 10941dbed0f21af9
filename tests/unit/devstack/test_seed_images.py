"""`make up`'s stock images: the setting, the upload's progress, and a second run that skips."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from virga_devstack import seed, seed_images


def test_debian_12_by_default_and_none_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(seed_images.SETTING, raising=False)
    assert seed_images.wanted() == ["debian-12"]
    for skip in ("none", "", " "):
        monkeypatch.setenv(seed_images.SETTING, skip)
        assert seed_images.wanted() == []
    assert seed_images.seed_stock("http://127.0.0.1:9", "t") is None  # nothing asked, no call
    monkeypatch.setenv(seed_images.SETTING, "debian-12,ubuntu")
    with pytest.raises(seed.SeedError, match="ubuntu"):
        seed_images.wanted()


def test_the_upload_reports_each_tenth_once() -> None:
    reported: list[str] = []
    body = seed_images.Progress(io.BytesIO(b"x" * 1000), 1000, reported.append)
    while body.read(64):
        pass
    assert reported == [f"{n}%" for n in range(10, 101, 10)]


def test_an_available_public_image_with_the_same_bytes_is_not_uploaded_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    listed = [
        {"id": "old", "name": "debian-12", "sha256": "aa", "visibility": "public",
         "status": "available"},
        {"id": "mine", "name": "debian-12", "sha256": "bb", "visibility": "private",
         "status": "available"},
        {"id": "same", "name": "debian-12", "sha256": "bb", "visibility": "public",
         "status": "available"},
    ]  # fmt: skip
    calls: list[str] = []

    def call(api: str, token: str, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        calls.append(f"{method} {path}")
        return 200, {}

    monkeypatch.setattr(seed, "_images", lambda api, token: listed)
    monkeypatch.setattr(seed, "_call", call)
    disk = tmp_path / "d.qcow2"
    disk.write_bytes(b"QFI\xfb")
    assert seed_images.upload("http://api", "t", disk, "bb") == ("same", False)
    assert calls == []
    # One whose RBD image is gone (a memstore cluster restarted) does not count.
    with pytest.raises(KeyError):  # the stub answers the upload with no image
        seed_images.upload("http://api", "t", disk, "bb", in_pool=lambda image_id: False)
    assert calls == ["POST /v1/images?name=debian-12&disk_format=qcow2&visibility=public"]
