"""The service runtime: how every Virga service rebuilds from the log, decides and snapshots.

The declarations (`ServiceDefinition`, `Emit`, `Effect`, `Intent`) live in
`virga_runtime.service`, which imports no Kafka or HTTP code, so a service's pure core can
use them; the runner and its I/O load only when asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from virga_runtime.service import Effect, EffectHandler, Emit, Intent, ServiceDefinition

if TYPE_CHECKING:
    from virga_runtime.observability import ServiceMetrics, configure_logging, health_routes
    from virga_runtime.runner import ServiceRunner
    from virga_runtime.runner_config import RunnerConfig

_LAZY = {
    "RunnerConfig": "virga_runtime.runner_config",
    "ServiceRunner": "virga_runtime.runner",
    "ServiceMetrics": "virga_runtime.observability",
    "configure_logging": "virga_runtime.observability",
    "health_routes": "virga_runtime.observability",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'virga_runtime' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "Effect",
    "EffectHandler",
    "Emit",
    "Intent",
    "RunnerConfig",
    "ServiceDefinition",
    "ServiceMetrics",
    "ServiceRunner",
    "configure_logging",
    "health_routes",
]
