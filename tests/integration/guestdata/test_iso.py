"""The config drive written as an ISO by the real xorriso, read back by xorriso."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from virga_guestdata import (
    CONFIG_DRIVE_LABEL,
    NOCLOUD_LABEL,
    GuestFacts,
    GuestNic,
    config_drive_files,
    nocloud_files,
)
from virga_guestdata.iso import IsoError, write_iso


def _read_back(iso: Path, into: Path) -> tuple[str, dict[str, bytes]]:
    info = subprocess.run(
        ["xorriso", "-indev", str(iso), "-pvd_info"], capture_output=True, text=True, check=True
    ).stdout
    [label] = [line.split(":", 1)[1].strip() for line in info.splitlines() if "Volume Id" in line]
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(into)],
        capture_output=True,
        check=True,
    )
    files = {
        path.relative_to(into).as_posix(): path.read_bytes()
        for path in into.rglob("*")
        if path.is_file()
    }
    return label, files


def test_a_config_drive_iso_reads_back_with_its_label_names_and_bytes(tmp_path: Path) -> None:
    nic = GuestNic("52:54:00:12:34:56", ("10.9.0.5",), "10.9.0.0/24", "10.9.0.1")
    facts = GuestFacts(
        "7b0e",
        "web-1",
        "web-1",
        key_name="k",
        public_keys=("ssh-ed25519 AAAA k",),
        user_data=b"#!/bin/sh\ntouch /marker\n",
        nic=nic,
    )
    files = config_drive_files(facts)
    iso = write_iso(files, tmp_path / "drive" / "config.iso")
    label, read = _read_back(iso, tmp_path / "out")
    assert label == CONFIG_DRIVE_LABEL
    assert read == files  # lower-case names, underscores and bytes survive
    assert [p.name for p in iso.parent.iterdir()] == ["config.iso"]  # no scratch left


def test_a_nocloud_seed_has_the_cidata_label(tmp_path: Path) -> None:
    files = nocloud_files(GuestFacts("u1", "db", "db", user_data=b"#cloud-config\n"))
    label, read = _read_back(write_iso(files, tmp_path / "seed.iso", NOCLOUD_LABEL), tmp_path / "o")
    assert (label, read) == (NOCLOUD_LABEL, files)


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../../x"])
def test_a_path_leaving_the_image_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(IsoError, match="inside"):
        write_iso({name: b"x"}, tmp_path / "bad.iso")
    assert not (tmp_path / "bad.iso").exists()
