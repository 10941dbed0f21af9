"""How one network agent is set up: its host, its tunnel endpoint, its interface names."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from virga_network.agent.core.edge import EdgeSettings
from virga_network.agent.core.names import DEFAULT_PREFIX, check_prefix
from virga_network.agent.core.plumbing import TapKind
from virga_runtime.env import DEFAULT_NAMESPACE, Env

DriverName = Literal["netlink", "memory"]


@dataclass(frozen=True, slots=True)
class NetworkAgentConfig:
    """Settings of the network agent on one host."""

    host: str
    """This host's name, as the scheduler and compute agent know it."""
    vtep_ip: str
    """This host's VXLAN tunnel endpoint: an address on the underlay other hosts reach."""
    prefix: str = DEFAULT_PREFIX
    """Start of every interface name the agent makes (1-3 characters); it touches no other."""
    tap_kind: TapKind = "tap"
    driver: DriverName = "netlink"
    """`memory` plumbs nothing (demos, tests of the service without root)."""
    sync_seconds: float = 0.2
    """How often the agent compares what the log wants with what it last made."""
    http_port: int | None = None
    namespace: str = DEFAULT_NAMESPACE
    host_lease_seconds: float = 15.0
    """How long this host's lease outlives a crashed agent (`virga_runtime.lease`)."""
    edge: bool = True
    """Serve DHCP (v4 and v6) and metadata to this host's guests (`core.edge`); netlink
    driver only."""
    underlay_mtu: int = 1500
    """MTU of the underlay the VXLAN tunnels cross; guests are told 50 bytes less."""
    dns_servers: tuple[str, ...] = ()
    """DNS servers DHCP and network_data.json give guests; empty: none given."""

    @property
    def edge_settings(self) -> EdgeSettings:
        return EdgeSettings(underlay_mtu=self.underlay_mtu, dns_servers=self.dns_servers)

    def __post_init__(self) -> None:
        if not self.host or any(c.isspace() or c == "/" for c in self.host):
            raise ValueError(f"bad host name {self.host!r}")
        ipaddress.ip_address(self.vtep_ip)  # ValueError names the bad address
        check_prefix(self.prefix)
        if self.tap_kind not in get_args(TapKind):
            raise ValueError(f"tap kind must be one of {get_args(TapKind)}")
        if self.driver not in get_args(DriverName):
            raise ValueError(f"driver must be one of {get_args(DriverName)}")
        if self.sync_seconds <= 0 or self.host_lease_seconds <= 0:
            raise ValueError("sync_seconds and host_lease_seconds must be positive")
        if not 1280 <= self.underlay_mtu <= 65535:
            raise ValueError(f"underlay MTU {self.underlay_mtu} is not within 1280-65535")
        for server in self.dns_servers:
            if ipaddress.ip_address(server).version != 4:
                raise ValueError(f"DNS server {server} is not an IPv4 address")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NetworkAgentConfig:
        """Read VIRGA_HOST and VIRGA_VTEP_IP (required), VIRGA_NETWORK_IFACE_PREFIX,
        VIRGA_NETWORK_TAP_KIND (tap|veth), VIRGA_NETWORK_DRIVER (netlink|memory),
        VIRGA_NETWORK_SYNC_SECONDS, VIRGA_HTTP_PORT, VIRGA_NAMESPACE,
        VIRGA_HOST_LEASE_SECONDS, VIRGA_NETWORK_EDGE (on|off), VIRGA_NETWORK_UNDERLAY_MTU and
        VIRGA_NETWORK_DNS_SERVERS (comma-separated); raise SystemExit naming a bad one."""
        env = Env(environ)
        host, vtep_ip = env.text("VIRGA_HOST"), env.text("VIRGA_VTEP_IP")
        if host is None:
            raise SystemExit("VIRGA_HOST must name this host")
        if vtep_ip is None:
            raise SystemExit("VIRGA_VTEP_IP must be this host's VXLAN tunnel endpoint address")
        edge = (env.text("VIRGA_NETWORK_EDGE") or "on").lower()
        if edge not in ("on", "off"):
            raise SystemExit(f"VIRGA_NETWORK_EDGE must be on or off, not {edge!r}")
        dns = env.text("VIRGA_NETWORK_DNS_SERVERS") or ""
        try:
            return cls(
                host=host,
                vtep_ip=vtep_ip,
                prefix=env.text("VIRGA_NETWORK_IFACE_PREFIX") or DEFAULT_PREFIX,
                tap_kind=env.text("VIRGA_NETWORK_TAP_KIND") or "tap",  # type: ignore[arg-type]
                driver=env.text("VIRGA_NETWORK_DRIVER") or "netlink",  # type: ignore[arg-type]
                sync_seconds=env.number("VIRGA_NETWORK_SYNC_SECONDS", 0.2),
                http_port=env.port("VIRGA_HTTP_PORT"),
                namespace=env.namespace(),
                host_lease_seconds=env.number("VIRGA_HOST_LEASE_SECONDS", 15.0),
                edge=edge == "on",
                underlay_mtu=env.whole("VIRGA_NETWORK_UNDERLAY_MTU", 1500),
                dns_servers=tuple(s.strip() for s in dns.split(",") if s.strip()),
            )
        except ValueError as exc:
            raise SystemExit(f"bad network agent setting: {exc}") from None
