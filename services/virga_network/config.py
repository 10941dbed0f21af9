"""How the network controller is set up: its VXLAN id range, its MAC prefix and topics."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from virga_runtime.env import DEFAULT_NAMESPACE, Env

VNI_LIMIT = 2**24 - 1
"""VXLAN ids are 24 bits."""

_MAC_PREFIX = re.compile(r"^[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$")


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """Settings of the network controller (one per cloud)."""

    vni_min: int = 1000
    """First VXLAN id handed out; ids below are left to the operator's own overlays."""
    vni_max: int = VNI_LIMIT
    mac_prefix: str = "fa:16:3e"
    """First three octets of every port's MAC: locally administered, unicast."""
    http_port: int | None = None
    """Port for /healthz and /metrics; None serves nothing."""
    namespace: str = DEFAULT_NAMESPACE

    def __post_init__(self) -> None:
        if not 1 <= self.vni_min <= self.vni_max <= VNI_LIMIT:
            raise ValueError(f"need 1 <= vni_min <= vni_max <= {VNI_LIMIT}")
        if not _MAC_PREFIX.match(self.mac_prefix):
            raise ValueError("mac_prefix must be three lower-case hex octets, as fa:16:3e")
        first = int(self.mac_prefix[:2], 16)
        if first & 0x01 or not first & 0x02:
            raise ValueError("mac_prefix must be unicast and locally administered (x2, x6, xa, xe)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NetworkConfig:
        """Read VIRGA_NETWORK_VNI_MIN, VIRGA_NETWORK_VNI_MAX, VIRGA_NETWORK_MAC_PREFIX,
        VIRGA_HTTP_PORT and VIRGA_NAMESPACE; raise SystemExit naming a bad one."""
        env = Env(environ)
        defaults = cls()
        try:
            return cls(
                vni_min=env.whole("VIRGA_NETWORK_VNI_MIN", defaults.vni_min),
                vni_max=env.whole("VIRGA_NETWORK_VNI_MAX", defaults.vni_max),
                mac_prefix=(env.text("VIRGA_NETWORK_MAC_PREFIX") or defaults.mac_prefix).lower(),
                http_port=env.port("VIRGA_HTTP_PORT"),
                namespace=env.namespace(),
            )
        except ValueError as exc:
            raise SystemExit(f"bad network setting: {exc}") from None
