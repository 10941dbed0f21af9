"""The controller and its API import in a fresh interpreter (no hidden cycles); its pure core
loads no Kafka, HTTP or netlink."""

from __future__ import annotations

import subprocess
import sys

import pytest

ENTRY_POINTS = ["virga_network.main", "virga_gateway.networks.routes"]
"""Between them they import every module of the controller and of its API."""
PURE = [
    "virga_network.core.model",
    "virga_network.core.fold",
    "virga_network.core.snapshot",
    "virga_network.core.decide",
    "virga_ipam",
]


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_module_imports_alone(module: str) -> None:
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=60)


def test_the_pure_core_imports_no_io() -> None:
    probe = (
        f"import sys; import {', '.join(PURE)}; "
        "loaded = [m for m in ('aiokafka', 'aiohttp', 'pyroute2', 'libvirt') if m in sys.modules]; "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
