"""Debian 12's genuine cloud image, built here (or taken from the cache), boots under plain
libvirt (qemu:///system, TCG) with a config drive, and Debian's own cloud-init configures it:
the key in the drive logs in as `debian` over SSH from a namespace on the guest's bridge, the
hostname is the drive's, the user-data script ran, the static address and MTU 1450 from
network_data.json are on the NIC, `cloud-init status --wait` says done, and
qemu-guest-agent answers on its virtio channel. Nothing is left
behind: no domain, bridge, veth or namespace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from tests.support import stock_guest

from virga_devstack import stock_image

pytestmark = [pytest.mark.e2e, pytest.mark.libvirt, pytest.mark.slow, pytest.mark.timeout(1500)]

BOOT_SECONDS = 300.0
"""TCG on a busy 2-core machine: first SSH takes ~80 s idle; every wait ends on a signal."""
USER_DATA = b'#!/bin/sh\necho "marker from $(hostname)" > /var/tmp/virga-marker\n'


@pytest.fixture(scope="module")
def image() -> stock_image.StockImage:
    return stock_image.build(log=print)


@pytest.fixture
def segment() -> Iterator[stock_guest.Segment]:
    with stock_guest.segment("vsg") as made:
        yield made


def test_debian_12_boots_with_a_config_drive_and_its_tenant_logs_in(
    libvirtd: None, image: stock_image.StockImage, segment: stock_guest.Segment, tmp_path: Path
) -> None:
    with stock_guest.booted(image.disk, tmp_path, segment, USER_DATA) as guest:
        seconds = guest.wait_for_ssh(BOOT_SECONDS)
        print(f"domain start → first SSH login: {seconds:.1f} s")
        done = guest.ssh("cloud-init status --wait", timeout=BOOT_SECONDS)
        assert "status: done" in done.stdout, done.stdout + done.stderr + guest.log()
        assert guest.ssh("hostname").stdout.strip() == guest.hostname
        marker = guest.ssh("cat /var/tmp/virga-marker")
        assert marker.stdout.strip() == f"marker from {guest.hostname}", marker.stderr
        assert guest.ssh("sudo -n id -u").stdout.strip() == "0"  # debian has sudo, as upstream
        link = guest.ssh("ip -o -4 addr show; ip -o link show").stdout
        assert f"{stock_guest.GUEST_IP}/24" in link
        assert f"mtu {stock_guest.MTU}" in link
        route = guest.ssh("ip route show default").stdout
        assert f"via {stock_guest.PEER_IP}" in route
        # Every instance made its own host keys and machine id: the image carries none.
        ids = guest.ssh("cat /etc/machine-id; ls /etc/ssh/ssh_host_ed25519_key.pub").stdout
        assert len(ids.split()[0]) == 32, ids
        assert guest.agent_answers(), "qemu-guest-agent does not answer on its channel"
        name = guest.name
    connection = libvirt.open(stock_guest.URI)
    try:
        assert name not in {d.name() for d in connection.listAllDomains()}
    finally:
        connection.close()
