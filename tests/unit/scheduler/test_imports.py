"""Every placement module imports on its own in a fresh interpreter (no hidden import cycles)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import virga_scheduler.core.placement as placement

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(placement.__path__, prefix=f"{placement.__name__}.")
)


def test_every_module_is_found() -> None:
    assert f"{placement.__name__}.filters.capacity" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone(module: str) -> None:
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=60)
