"""The compute agent's settings from the environment."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from virga_compute.config import ComputeConfig
from virga_compute.drivers.domain_xml import config_drive_path
from virga_compute.drivers.libvirt import LibvirtDriver
from virga_compute.main import build_driver


def test_everything_has_a_default_but_the_host() -> None:
    config = ComputeConfig.from_env({"VIRGA_HOST": "hv-7"})
    assert config == ComputeConfig(host="hv-7", domain_type="test")
    assert config.libvirt_uri == "test:///default"
    assert (config.heartbeat_seconds, config.usage_seconds) == (10.0, 60.0)
    assert config.tick_seconds == 10.0


def test_every_setting_is_read() -> None:
    config = ComputeConfig.from_env(
        {
            "VIRGA_HOST": "hv-7",
            "VIRGA_RACK": "r2",
            "VIRGA_ZONE": "az-b",
            "VIRGA_TRAITS": "ssd, gpu,,ssd",
            "VIRGA_LIBVIRT_URI": "qemu:///system",
            "VIRGA_INSTANCES_PATH": "/srv/virga",
            "VIRGA_CONFIG_DRIVE_PATH": "/srv/drives",
            "VIRGA_HEARTBEAT_SECONDS": "5",
            "VIRGA_USAGE_SECONDS": "2.5",
            "VIRGA_RESTART_POLICY": "report",
            "VIRGA_STOP_GRACE_SECONDS": "30",
            "VIRGA_HTTP_PORT": "9105",
            "VIRGA_NAMESPACE": "staging",
        }
    )
    assert config == ComputeConfig(
        host="hv-7",
        rack="r2",
        zone="az-b",
        traits=("ssd", "gpu"),
        libvirt_uri="qemu:///system",
        domain_type="qemu",
        instances_path="/srv/virga",
        config_drive_path="/srv/drives",
        heartbeat_seconds=5,
        usage_seconds=2.5,
        restart_policy="report",
        stop_grace_seconds=30,
        http_port=9105,
        namespace="staging",
    )
    assert config.tick_seconds == 2.5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "VIRGA_HOST"),
        ({"VIRGA_HOST": "hv", "VIRGA_USAGE_SECONDS": "soon"}, "VIRGA_USAGE_SECONDS"),
        ({"VIRGA_HOST": "hv", "VIRGA_HEARTBEAT_SECONDS": "0"}, "positive"),
        ({"VIRGA_HOST": "hv", "VIRGA_RESTART_POLICY": "always"}, "restart_policy"),
        ({"VIRGA_HOST": "hv", "VIRGA_DOMAIN_TYPE": "xen"}, "domain_type"),
        ({"VIRGA_HOST": "a/b"}, "bad host"),
    ],
)
def test_a_bad_setting_stops_the_agent_naming_it(env: dict[str, str], message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        ComputeConfig.from_env(env)


def test_config_drives_go_under_the_instances_path_unless_set(tmp_path: Path) -> None:
    config = ComputeConfig.from_env(
        {"VIRGA_HOST": "hv-7", "VIRGA_INSTANCES_PATH": str(tmp_path), "VIRGA_DOMAIN_TYPE": "test"}
    )
    driver = build_driver(config)
    assert isinstance(driver, LibvirtDriver)
    path = config_drive_path(driver._settings, "i-1")
    assert path == f"{tmp_path}/config-drives/virga-i-1.iso"
    moved = build_driver(dataclasses.replace(config, config_drive_path="/srv/drives"))
    assert isinstance(moved, LibvirtDriver)
    assert config_drive_path(moved._settings, "i-1") == "/srv/drives/virga-i-1.iso"
