"""Every module imports on its own, and the pure core pulls in no HTTP or Kafka."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import virga_gateway

PACKAGE = Path(virga_gateway.__file__).parent
MODULES = sorted(
    "virga_gateway." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    for path in PACKAGE.rglob("*.py")
    if path.name not in {"__init__.py", "__main__.py"}
)
RESOURCES = sorted(path.parent.name for path in PACKAGE.glob("*/__init__.py"))
"""The resource packages (instances, volumes, ...): each one's modules but `routes` are pure."""
PURE = [
    "virga_gateway.auth",
    "virga_gateway.cursor",
    "virga_gateway.idempotency",
    "virga_gateway.outcome",
    "virga_gateway.preview",
    "virga_gateway.problems",
    "virga_gateway.state",
    "virga_gateway.tokens",
    "virga_gateway.validation",
    *(
        module
        for module in MODULES
        if module.split(".")[1] in RESOURCES and not module.endswith(".routes")
    ),
]


async def top_level_modules_after_importing(
    module: str, slots: asyncio.Semaphore
) -> tuple[str, set[str]]:
    """Import `module` alone in a fresh interpreter; the packages it pulled in."""
    async with slots:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            f"import sys, {module}; print(*sys.modules)",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
    assert process.returncode == 0, f"{module}: {err.decode()}"
    return module, {name.split(".")[0] for name in out.decode().split()}


async def test_each_module_imports_alone_and_the_core_needs_no_http_or_kafka() -> None:
    # One fresh interpreter per module (import cycles show only in some orders), as many at
    # once as there are cores: a hundred at once only load the machine.
    slots = asyncio.Semaphore(os.cpu_count() or 2)
    results = dict(
        await asyncio.gather(*(top_level_modules_after_importing(m, slots) for m in MODULES))
    )
    assert set(PURE) <= set(results)
    assert "virga_gateway.instances.fold" in PURE  # the resources were found
    for module in PURE:
        assert not results[module] & {"aiohttp", "aiokafka"}, module
    assert {"aiohttp", "aiokafka"} <= results["virga_gateway.app"]  # the check can fail
