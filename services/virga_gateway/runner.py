"""The gateway's runner: the common service runtime over the gateway's projection."""

from __future__ import annotations

from typing import TypeAlias

from virga_gateway.state import GatewayState
from virga_runtime.runner import ServiceRunner

GatewayRunner: TypeAlias = ServiceRunner[GatewayState]
