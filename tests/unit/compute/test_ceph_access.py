"""Where the agent learns Ceph is: ceph.conf monitors, keyrings, the VIRGA_CEPH_* settings."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from virga_compute.ceph_access import keyring_key, parse_conf, parse_mon_host, settings_from_env
from virga_compute.config import ComputeConfig
from virga_compute.core.spec import CephMonitor, DirectKernelBoot
from virga_compute.drivers.domain_xml import ceph_secret_xml

KEY = base64.b64encode(b"sixteen byte key").decode()


@pytest.mark.parametrize(
    ("value", "monitors"),
    [
        ("[v1:127.0.0.1:16902]", [("127.0.0.1", 16902)]),
        (
            "[v2:10.0.0.1:3300,v1:10.0.0.1:6789] [v2:10.0.0.2:3300,v1:10.0.0.2:6789]",
            [("10.0.0.1", 6789), ("10.0.0.2", 6789)],
        ),
        ("10.0.0.1,10.0.0.2:6790", [("10.0.0.1", 6789), ("10.0.0.2", 6790)]),
        ("mon-a.example.net", [("mon-a.example.net", 6789)]),
        ("[v1:[::1]:6789]", [("::1", 6789)]),
        ("", []),
    ],
)
def test_mon_host_gives_one_msgr_v1_address_per_monitor(
    value: str, monitors: list[tuple[str, int]]
) -> None:
    assert parse_mon_host(value) == tuple(CephMonitor(h, p) for h, p in monitors)


def test_a_keyring_yields_the_key_of_the_entity_asked_for() -> None:
    other = base64.b64encode(b"x").decode()
    text = f"[client.other]\n\tkey = {other}\n[client.admin]\n\tkey = {KEY}\n"
    assert keyring_key(text, "client.admin") == b"sixteen byte key"
    assert keyring_key(text, "client.nobody") is None


def test_settings_come_from_the_clusters_conf_and_keyring(tmp_path: Path) -> None:
    keyring = tmp_path / "keyring"
    keyring.write_text(f'[client.admin]\n\tkey = {KEY}\n\tcaps mon = "allow *"\n')
    conf = tmp_path / "ceph.conf"
    conf.write_text(
        "[global]\nfsid = 1234\nmon host = [v1:127.0.0.1:16902]\n"
        f"auth client required = cephx\nkeyring = {keyring}\n[osd]\nkeyring = /elsewhere\n"
    )
    named = {"VIRGA_CEPH_CONF": str(conf), "VIRGA_CEPH_USER": "admin"}
    settings = settings_from_env({**named, "VIRGA_CEPH_POOL": "vms"})
    assert settings is not None
    assert settings.monitors == (CephMonitor("127.0.0.1", 16902),)
    assert (settings.pool, settings.user, settings.keyring) == ("vms", "admin", str(keyring))
    source = settings.source("v-1")
    assert (source.image, source.auth_user, source.secret_uuid) == (
        "volume-v-1",
        "admin",
        settings.secret_uuid,
    )
    secret = settings.secret()
    assert secret is not None
    assert secret.key == b"sixteen byte key"
    assert KEY not in repr(secret)
    # The same cluster and user always give the same libvirt secret.
    again = settings_from_env(named)
    assert again is not None
    assert again.secret_uuid == settings.secret_uuid


def test_without_cephx_disks_carry_no_auth(tmp_path: Path) -> None:
    conf = tmp_path / "ceph.conf"
    conf.write_text("[global]\nmon_host = 10.0.0.1\nauth_client_required = none\n")
    settings = settings_from_env({"VIRGA_CEPH_CONF": str(conf)})
    assert settings is not None
    assert settings.source("v").auth_user is None
    assert settings.secret() is None


def test_a_named_missing_conf_is_an_error_and_monitors_may_be_given_alone(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "ceph.conf"
    conf.write_text("[global]\nfsid = 1\n")
    assert settings_from_env({"VIRGA_CEPH_CONF": str(conf)}) is None  # no monitor: no Ceph
    with pytest.raises(ValueError, match="does not exist"):
        settings_from_env({"VIRGA_CEPH_CONF": str(tmp_path / "absent")})
    monitors = settings_from_env(
        {"VIRGA_CEPH_MONITORS": "10.0.0.9:6789", "VIRGA_CEPH_USER": "none"}
    )
    assert monitors is not None
    assert monitors.monitors == (CephMonitor("10.0.0.9", 6789),)


def test_an_unreadable_key_stops_the_agent_naming_the_keyring(tmp_path: Path) -> None:
    settings = settings_from_env(
        {
            "VIRGA_HOST": "hv-1",
            "VIRGA_CEPH_MONITORS": "10.0.0.9",
            "VIRGA_CEPH_KEYRING": str(tmp_path / "none"),
        }
    )
    assert settings is not None
    with pytest.raises(ValueError, match="cannot read keyring"):
        settings.secret()


def test_the_agent_config_reads_ceph_from_the_environment(tmp_path: Path) -> None:
    config = ComputeConfig.from_env(
        {"VIRGA_HOST": "hv-1", "VIRGA_CEPH_MONITORS": "10.0.0.9", "VIRGA_CEPH_POOL": "vms"}
    )
    assert config.ceph is not None
    assert config.ceph.pool == "vms"
    with pytest.raises(SystemExit, match="bad compute agent setting"):
        ComputeConfig.from_env({"VIRGA_HOST": "hv-1", "VIRGA_CEPH_CONF": str(tmp_path / "x")})


def test_the_libvirt_secret_is_private_persistent_and_of_ceph_usage() -> None:
    root = ET.fromstring(ceph_secret_xml("5c2e5e0e-6c5e-4a52-9a1f-0e7f1f6f2a10", "admin"))
    assert (root.get("ephemeral"), root.get("private")) == ("no", "yes")
    assert root.findtext("uuid") == "5c2e5e0e-6c5e-4a52-9a1f-0e7f1f6f2a10"
    usage = root.find("usage")
    assert usage is not None
    assert usage.get("type") == "ceph"
    assert "client.admin" in (usage.findtext("name") or "")


def test_conf_names_are_normalised_and_other_sections_ignored() -> None:
    options = parse_conf(
        "[global]\nmon host = a\n; comment\n[osd]\nkeyring = k\n[client]\nkeyring = c\n"
    )
    assert options == {"mon_host": "a", "keyring": "c"}


def test_a_host_wide_guest_kernel_boots_every_instance(tmp_path: Path) -> None:
    config = ComputeConfig.from_env(
        {"VIRGA_HOST": "hv-1", "VIRGA_GUEST_KERNEL": "/k", "VIRGA_GUEST_INITRD": "/i"}
    )
    assert config.direct_boot == DirectKernelBoot("/k", "/i", "console=ttyS0")
    assert ComputeConfig.from_env({"VIRGA_HOST": "hv-1"}).direct_boot is None
    with pytest.raises(SystemExit):
        ComputeConfig.from_env({"VIRGA_HOST": "hv-1", "VIRGA_GUEST_KERNEL": "relative"})


def test_the_default_cephx_user_is_the_hosts_own_never_admin(tmp_path: Path) -> None:
    """An agent told nothing about its user runs as `client.virga-compute-<host>`, whose
    keyring is Ceph's default for that name, not as `client.admin`."""
    conf = tmp_path / "ceph.conf"
    conf.write_text("[global]\nfsid = 77\nmon host = 10.0.0.1\n")
    settings = settings_from_env({"VIRGA_CEPH_CONF": str(conf), "VIRGA_HOST": "hv-7"})
    assert settings is not None
    assert settings.user == "virga-compute-hv-7"
    assert settings.keyring == "/etc/ceph/ceph.client.virga-compute-hv-7.keyring"
    assert settings.source("v").auth_user == "virga-compute-hv-7"
    config = ComputeConfig.from_env(
        {"VIRGA_HOST": "hv-7", "VIRGA_CEPH_CONF": str(conf), "VIRGA_CEPH_KEYRING": "/k"}
    )
    assert config.ceph is not None
    assert (config.ceph.user, config.ceph.keyring) == ("virga-compute-hv-7", "/k")
    # `admin` only when asked for by name.
    named = settings_from_env({"VIRGA_CEPH_CONF": str(conf), "VIRGA_CEPH_USER": "admin"})
    assert named is not None
    assert named.user == "admin"
    with pytest.raises(ValueError, match="VIRGA_CEPH_USER"):
        settings_from_env({"VIRGA_CEPH_CONF": str(conf)})  # whose user? no host, no name
