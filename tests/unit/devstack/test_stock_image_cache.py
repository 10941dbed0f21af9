"""The Debian cloud image's cache: its key, its warm path, and concurrent builds."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from pathlib import Path

import pytest

from virga_devstack import stock_disk, stock_image


def test_the_key_changes_with_every_input_and_only_with_them(tmp_path: Path) -> None:
    inputs = stock_image.resolve_inputs(tmp_path)
    assert inputs.key() == stock_image.resolve_inputs(tmp_path).key()
    changed = [
        dataclasses.replace(inputs, packages=(*inputs.packages, "vim")),
        dataclasses.replace(inputs, customize_sha256="0" * 64),
        dataclasses.replace(inputs, disk_mib=inputs.disk_mib * 2),
        dataclasses.replace(inputs, builder="999"),
        dataclasses.replace(inputs, sources=inputs.sources[:1]),
        dataclasses.replace(inputs, releases={**inputs.releases, "x_InRelease": "ab"}),
    ]
    assert len({inputs.key(), *(other.key() for other in changed)}) == len(changed) + 1


def test_the_key_follows_the_apt_sources_release_files(tmp_path: Path) -> None:
    before = stock_image.resolve_inputs(tmp_path)
    assert set(before.releases.values()) == {""}  # apt never fetched them here
    name = stock_image.release_file(stock_image.sources()[0])
    assert name == "deb.debian.org_debian_dists_bookworm_InRelease"
    (tmp_path / name).write_text("Origin: Debian\nDate: today\n")
    after = stock_image.resolve_inputs(tmp_path)
    assert after.releases[name] != ""
    assert after.key() != before.key()


def test_the_mirror_is_a_setting_and_part_of_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    default = stock_image.resolve_inputs()
    monkeypatch.setenv("VIRGA_DEBIAN_MIRROR", "http://mirror.example/debian/")
    mirrored = stock_image.resolve_inputs()
    assert mirrored.sources[0] == "deb http://mirror.example/debian/ bookworm main"
    assert stock_image.release_file(mirrored.sources[0]).startswith("mirror.example_debian_dists")
    assert mirrored.key() != default.key()


def _fake_build(calls: list[int]) -> object:
    def build_into(target: Path, work: Path, inputs: stock_image.Inputs, log: object) -> None:
        calls.append(1)
        time.sleep(0.3)  # long enough for the other builders to queue on the lock
        target.mkdir()
        (target / f"{inputs.name}.qcow2").write_bytes(b"QFI\xfb")
        (target / "manifest.json").write_text(json.dumps({"sha256": "ab"}))

    return build_into


def test_concurrent_builds_build_once_and_the_second_call_is_instant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(stock_image, "_build_into", _fake_build(calls))
    monkeypatch.setattr(stock_image, "TOOLS", ())
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(stock_image.build(tmp_path).disk))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1]
    assert len(set(results)) == 1
    assert results[0].is_file()
    began = time.monotonic()
    warm = stock_image.build(tmp_path)
    assert time.monotonic() - began < 0.5
    assert warm.disk == results[0]
    assert warm.sha256() == "ab"
    assert calls == [1]
    # Nothing half-built is left beside the entry.
    assert [p.name for p in stock_image.images_root(tmp_path).iterdir() if p.is_dir()] == [
        warm.inputs.key()
    ]


def test_a_failed_build_leaves_no_cache_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(target: Path, work: Path, inputs: stock_image.Inputs, log: object) -> None:
        target.mkdir()
        (target / "debian-12.qcow2").write_bytes(b"half")
        raise stock_image.StockImageError("mmdebstrap failed")

    monkeypatch.setattr(stock_image, "_build_into", failing)
    monkeypatch.setattr(stock_image, "TOOLS", ())
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(stock_image.StockImageError):
        stock_image.build(tmp_path)
    assert stock_image.cached(stock_image.resolve_inputs(), tmp_path) is None
    assert [p.name for p in stock_image.images_root(tmp_path).iterdir()] == [".lock"]


def test_the_customisation_makes_a_cloud_image_of_it() -> None:
    script = stock_image.CUSTOMIZE
    assert 'rm -f "$root"/etc/ssh/ssh_host_*' in script
    assert ': > "$root/etc/machine-id"' in script
    assert "datasource_list: [NoCloud, ConfigDrive, OpenStack, None]" in script
    assert f"root=UUID={stock_image.ROOT_UUID}" in script
    assert {"cloud-init", "openssh-server", "qemu-guest-agent", "sudo"} <= set(stock_image.PACKAGES)


def test_the_partition_table_and_grub_go_where_boot_img_looks(tmp_path: Path) -> None:
    assert stock_disk.partition_table(2048) == (
        "label: dos\nlabel-id: 0x56697267\nstart=2048, size=4192256, type=83, bootable\n"
    )
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\0" * 446 + b"T" * 64 + b"\x55\xaa" + b"\0" * 4096)
    stock_disk.install_grub(raw, b"B" * 512, b"C" * 1024)
    data = raw.read_bytes()
    assert data[:440] == b"B" * 440
    assert data[440:446] == b"\0" * 6
    assert data[446:510] == b"T" * 64
    assert data[510:512] == b"\x55\xaa"
    assert data[512:1536] == b"C" * 1024
    with pytest.raises(stock_disk.StockDiskError):
        stock_disk.install_grub(raw, b"B" * 512, b"C" * (2047 * 512 + 1))


def test_a_cold_build_as_another_user_says_it_needs_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(stock_image.StockImageError, match="needs root"):
        stock_image.build(tmp_path)
