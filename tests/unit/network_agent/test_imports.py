"""Every agent module imports on its own; its in-process driver loads no netlink or Kafka code."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import virga_network.agent as agent

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(agent.__path__, prefix="virga_network.agent.")
)


def test_every_module_is_found() -> None:
    assert "virga_network.agent.drivers.netlink" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone(module: str) -> None:
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=60)


def test_the_memory_driver_and_the_handlers_load_no_netlink_nor_kafka() -> None:
    # The core's purity is checked for every service by tests/unit/architecture/test_purity.py;
    # this is the agent's promise that its in-process driver runs where pyroute2 cannot.
    script = (
        "import sys\n"
        "import virga_network.agent.effects.converge, virga_network.agent.drivers.memory\n"
        "loaded = [m for m in ('pyroute2', 'aiokafka') if m in sys.modules]\n"
        "sys.exit(f'loaded {loaded}' if loaded else 0)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
