"""The controller and its API import in a fresh interpreter (no hidden cycles). That its pure
core loads no Kafka, HTTP or netlink is checked for every service by
tests/unit/architecture/test_purity.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

ENTRY_POINTS = ["virga_network.main", "virga_gateway.networks.routes"]
"""Between them they import every module of the controller and of its API."""


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_module_imports_alone(module: str) -> None:
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=60)
