"""Every service's pure core loads no HTTP, Kafka, libvirt, Ceph or netlink, even transitively.

The pure parts are found on disk: every `core` package of a service (and of the network
agent), every `effects/intents.py` (what `decide` returns), and the gateway's models, folds
and state. Their modules are imported one after the
other in one fresh interpreter, which reports the I/O packages each one pulled in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
IO_PACKAGES = ("aiohttp", "aiokafka", "libvirt", "rados", "rbd", "pyroute2")

# Run in the fresh interpreter: import each module in turn and say which I/O packages
# appeared in sys.modules with it.
PROBE = """
import importlib, json, sys
io_packages, modules = json.loads(sys.argv[1])
pulled = {}
for module in modules:
    before = set(sys.modules)
    importlib.import_module(module)
    pulled[module] = sorted(name for name in set(sys.modules) - before if name in io_packages)
print(json.dumps(pulled))
"""


def module_name(path: Path, services: Path) -> str:
    parts = path.relative_to(services).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def pure_modules(services: Path) -> list[str]:
    """The modules that must stay pure, found under a `services/` folder."""
    files: set[Path] = set()
    for core in [*services.glob("virga_*/core"), *services.glob("virga_*/agent/core")]:
        if (core / "__init__.py").exists():
            files.update(core.rglob("*.py"))
    for intents in [
        *services.glob("virga_*/effects/intents.py"),
        *services.glob("virga_*/agent/effects/intents.py"),
    ]:
        files.add(intents)  # what `decide` returns is data, as pure as `decide`
    gateway = services / "virga_gateway"
    files.update(gateway.rglob("model.py"))
    files.update(gateway.rglob("fold.py"))
    files.update(path for path in [gateway / "state.py"] if path.exists())
    return sorted(module_name(path, services) for path in files)


def io_pulled_by(modules: list[str], *paths: Path) -> dict[str, list[str]]:
    """Import `modules` in one fresh interpreter; the I/O packages each one pulled in."""
    env = dict(os.environ)
    roots = [*map(str, paths), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(root for root in roots if root)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([IO_PACKAGES, modules])],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    pulled: dict[str, list[str]] = json.loads(done.stdout)
    return pulled


MODULES = pure_modules(ROOT / "services")


@cache
def pulled_by_the_pure_modules() -> dict[str, list[str]]:
    return io_pulled_by(MODULES)


def test_every_service_has_a_pure_core_and_it_is_found() -> None:
    services = sorted(
        path.name for path in (ROOT / "services").glob("virga_*") if (path / "__init__.py").exists()
    )
    assert len(services) >= 6
    cores = {f"{service}.core" for service in services if service != "virga_gateway"}
    gateway = {
        "virga_gateway.state",
        "virga_gateway.instances.model",
        "virga_gateway.instances.fold",
    }
    assert cores | gateway | {"virga_network.agent.core"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_a_pure_module_loads_no_io(module: str) -> None:
    assert pulled_by_the_pure_modules()[module] == []


def test_a_core_that_imports_http_is_caught(tmp_path: Path) -> None:
    services = tmp_path / "services"
    core = services / "virga_probe" / "core"
    core.mkdir(parents=True)
    (services / "virga_probe" / "__init__.py").write_text("")
    (core / "__init__.py").write_text("")
    (core / "decide.py").write_text("from . import wire\n")
    (core / "wire.py").write_text("import aiohttp\n")
    agent_core = services / "virga_probe" / "agent" / "core"
    agent_core.mkdir(parents=True)
    (agent_core.parent / "__init__.py").write_text("")
    (agent_core / "__init__.py").write_text("")

    modules = pure_modules(services)
    assert modules == [
        "virga_probe.agent.core",
        "virga_probe.core",
        "virga_probe.core.decide",
        "virga_probe.core.wire",
    ]
    pulled = io_pulled_by(modules, services)
    # The first module to import aiohttp, even through a sibling, is named with it.
    assert pulled["virga_probe.core.decide"] == ["aiohttp"]
