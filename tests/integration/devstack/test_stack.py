"""`make up`'s engine (`python -m virga_devstack stack up|down`) as a user runs it.

The stack runs on the session's Kafka broker and Ceph cluster, in its own topic namespace,
state directory and ports, so it never touches a developer's own `make up`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from virga_devstack import guest_image, stock_image
from virga_devstack.ceph import CephCluster
from virga_devstack.processes import _is_ours

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.libvirt]

SERVICES = 7
BRIDGE, EXTERNAL_ADDRESS = "vstext", "198.18.7.1/24"
"""The external network's bridge `up` makes (the agent's prefix, then `ext`) and its address."""


def _free_run(count: int) -> int:
    """The first of `count` consecutive free ports."""
    for base in range(21000, 60000, 97):
        try:
            sockets = []
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError("no run of free ports")


class StackCommand:
    """Runs `stack up|down` with this test's ports, namespace and directories."""

    def __init__(self, tmp: Path, kafka_port: int, cluster: CephCluster) -> None:
        self.cwd = tmp
        self.kafka_port = kafka_port
        self.gateway_port = _free_run(7)
        self.first_port = self.gateway_port + 1
        self.env = {
            **os.environ,
            "VIRGA_STACK_DIR": str(tmp / "stack"),
            "VIRGA_NAMESPACE": f"stack{os.getpid()}",
            "VIRGA_CEPH_PORT": str(cluster.port),
            "VIRGA_GATEWAY_PORT": str(self.gateway_port),
            "VIRGA_STACK_PORTS_FROM": str(self.first_port),
            "VIRGA_HOST": "stack-test-host",
            "VIRGA_NETWORK_IFACE_PREFIX": "vst",
            # Not 203.0.113.1/24, which a developer's own `make up` holds on vgext.
            "VIRGA_DEVSTACK_EXTERNAL_ADDRESS": EXTERNAL_ADDRESS,
        }

    def __call__(self, *args: str) -> tuple[int, str, float]:
        began = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "virga_devstack", "stack", *args,
             "--kafka-port", str(self.kafka_port)],
            cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=400,
        )  # fmt: skip
        return result.returncode, result.stdout + result.stderr, time.monotonic() - began

    def pids(self) -> dict[str, int]:
        return {
            pid_file.stem: int(pid_file.read_text())
            for pid_file in (self.cwd / "stack").glob("*.pid")
        }


@pytest.fixture
def stack(
    tmp_path: Path, kafka_bootstrap: str, ceph_cluster: CephCluster
) -> Iterator[StackCommand]:
    command = StackCommand(tmp_path, int(kafka_bootstrap.rsplit(":", 1)[1]), ceph_cluster)
    try:
        yield command
    finally:
        # Whatever the test did, nothing it started outlives it: the external network's
        # bridge goes with `--all` (Ceph stays: `up` found it running).
        command("down", "--all")


@pytest.mark.timeout(900)  # a new machine builds debian-12 (~75 s) and uploads it in `up`
def test_up_starts_every_service_seeds_the_image_and_a_second_up_only_checks(
    stack: StackCommand,
) -> None:
    code, output, _ = stack("up")
    assert code == 0, output
    assert f"{SERVICES} started, 0 already running" in output
    assert f"{SERVICES} of {SERVICES} ready" in output
    assert f"Kafka on 127.0.0.1:{stack.kafka_port} ... already running" in output
    token = (stack.cwd / ".virga" / "admin-token").read_text().strip()
    assert token in output

    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.gateway_port}/v1/images",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        images = json.loads(response.read())["items"]
    image = guest_image.cached(guest_image.resolve_inputs())
    assert image is not None
    manifest = json.loads((image.directory / "manifest.json").read_text())
    [seeded] = [i for i in images if i["name"] == "virga-guest"]
    assert seeded["visibility"] == "public"
    assert seeded["status"] == "available"
    assert seeded["sha256"] == manifest["sha256"]["virga-guest.raw"]
    stock = stock_image.cached(stock_image.resolve_inputs())
    assert stock is not None
    [debian] = [i for i in images if i["name"] == "debian-12"]
    assert (debian["visibility"], debian["status"]) == ("public", "available")
    assert (debian["disk_format"], debian["sha256"]) == ("qcow2", stock.sha256())
    assert f"uploaded: {debian['id']}" in output
    assert "10% 20% 30%" in output  # the upload's progress

    assert f"bridge {BRIDGE} with {EXTERNAL_ADDRESS} (the internet) ... ok" in output
    assert f"external network 'public' on {BRIDGE} ... registered: " in output
    addresses = subprocess.run(
        ["ip", "-br", "addr", "show", "dev", BRIDGE], capture_output=True, text=True, check=True
    )
    assert EXTERNAL_ADDRESS in addresses.stdout
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.gateway_port}/v1/external-networks",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        [public] = json.loads(response.read())["items"]
    assert (public["name"], public["host_interface"]) == ("public", BRIDGE)
    assert public["gateway_ip"] == EXTERNAL_ADDRESS.split("/")[0]

    pids = stack.pids()
    assert len(pids) == SERVICES
    code, output, _ = stack("up")  # what it did, not how long (that is the machine's load)
    assert code == 0, output
    assert f"0 started, {SERVICES} already running" in output
    assert "already there" in output  # not uploaded twice
    assert f"already there: {debian['id']}" in output  # nor debian-12
    assert "(the internet) ... already there" in output
    assert f"on {BRIDGE} ... already there: {public['id']}" in output  # nor the network
    assert stack.pids() == pids

    code, output, _ = stack("down", "--all")
    assert code == 0, output
    for name, pid in pids.items():
        assert not _is_ours(pid, "virga_"), f"{name} still runs"
    assert stack.pids() == {}
    assert f"external network: 'public' deleted: {public['id']}" in output
    assert f"removed the external network's bridge {BRIDGE}" in output
    shown = subprocess.run(["ip", "link", "show", "dev", BRIDGE], capture_output=True, check=False)
    assert shown.returncode != 0


def test_up_as_another_user_says_it_needs_root_and_starts_nothing(
    tmp_path: Path,
) -> None:
    tmp_path.chmod(0o777)
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-m", "virga_devstack", "stack", "up"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "VIRGA_STACK_DIR": str(tmp_path / "stack")},
    )  # fmt: skip
    assert result.returncode == 1
    assert "needs root" in result.stderr
    assert "libvirtd" in result.stderr
    assert not (tmp_path / "stack").exists()
