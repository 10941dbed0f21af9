"""The service runtime: how every Virga service rebuilds from the log, decides and snapshots."""

from virga_runtime.observability import ServiceMetrics, configure_logging, health_routes
from virga_runtime.runner import RunnerConfig, ServiceRunner
from virga_runtime.service import Effect, EffectHandler, Emit, Intent, ServiceDefinition

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
