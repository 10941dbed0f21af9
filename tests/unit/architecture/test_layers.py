"""The top folders are layers: events/ < libs/ < services/ < apps/, read from the source files.

Static (`ast` over the files, nothing is imported): an import hidden in a function or under
`TYPE_CHECKING` counts as much as one at the top. The packages of each layer are the folders
found on disk, so a new service or library is covered without editing this file.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LAYERS = ("events", "libs", "services", "apps")


def packages(layer: str, root: Path = ROOT) -> set[str]:
    """The import packages a top folder holds: its subfolders with an ``__init__.py``."""
    return {path.parent.name for path in (root / layer).glob("*/__init__.py")}


def imported_packages(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level package) of every absolute import in one file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def violations(package_dir: Path, forbidden: set[str]) -> list[str]:
    """Every import of a package in `forbidden` from a module of `package_dir`."""
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        for line, imported in imported_packages(path):
            if imported in forbidden:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    return found


EVENTS = packages("events")
LIBS = packages("libs")
SERVICES = packages("services")
APPS = packages("apps")
PROJECT = EVENTS | LIBS | SERVICES | APPS


def test_the_layers_are_found_on_disk() -> None:
    assert "virga_events" in EVENTS
    assert {"virga_eventlog", "virga_runtime"} <= LIBS
    assert {"virga_scheduler", "virga_compute", "virga_gateway"} <= SERVICES
    assert {"virga_cli", "virga_audit", "virga_devstack"} <= APPS
    # One package lives in one layer only: a package name stands for one folder.
    assert sum(map(len, (EVENTS, LIBS, SERVICES, APPS))) == len(PROJECT)


@pytest.mark.parametrize("package", sorted(EVENTS))
def test_the_contract_depends_on_nothing_else_of_the_project(package: str) -> None:
    assert not violations(ROOT / "events" / package, PROJECT - {package})


@pytest.mark.parametrize("package", sorted(LIBS))
def test_a_library_imports_no_service_and_no_application(package: str) -> None:
    assert not violations(ROOT / "libs" / package, SERVICES | APPS)


@pytest.mark.parametrize("package", sorted(SERVICES))
def test_a_service_imports_no_other_service_and_no_application(package: str) -> None:
    assert not violations(ROOT / "services" / package, (SERVICES - {package}) | APPS)


def test_the_check_sees_an_import_wherever_it_is(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n"
        "    from virga_compute.config import ComputeConfig\n"
        "def late() -> None:\n"
        "    import virga_cli.main\n"
    )
    found = dict(imported_packages(module))
    assert found == {1: "typing", 4: "virga_compute", 6: "virga_cli"}
