"""Renders a host's `FilterSet` as one nftables script that replaces Virga's tables atomically.

Two tables per agent (named `virga_<prefix>`):

* `bridge`: anti-spoofing on frames entering from a port's tap (prerouting, before the bridge
  learns or forwards anything), and marks naming the ports a frame comes from (low 16 bits)
  and goes to (high 16 bits).
* `inet`: security groups. The kernel's bridge family has no connection tracking unless
  nf_conntrack_bridge is built, which it is not everywhere; br_netfilter is, and it passes
  bridged IPv4/IPv6 through the inet hooks where conntrack works. Those hooks see the bridge,
  not the port, hence the marks. Each network's traffic is tracked in its own conntrack zone
  so that two tenants' identical addresses never share a flow.

Neighbour discovery (solicitations, advertisements) always passes the security groups: its
forgeries are stopped by anti-spoofing, and without it IPv6 cannot work at all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from virga_network.agent.driver import FilterRule, FilterSet, PortFilter

MAX_PORTS = 0xFFFF
"""Ports one host can filter: a port's index must fit the 16 bits of a mark half."""


def table_name(prefix: str) -> str:
    return f"virga_{prefix}"


def link_local(mac: str) -> str:
    """The IPv6 link-local address a guest derives from its MAC (modified EUI-64)."""
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    eui = [*octets[:3], 0xFF, 0xFE, *octets[3:]]
    return str(ipaddress.IPv6Address(bytes([0xFE, 0x80, *([0] * 6), *eui])))


def _set(items: Iterable[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def _split(ips: Iterable[str]) -> tuple[list[str], list[str]]:
    v4: list[str] = []
    v6: list[str] = []
    for ip in ips:
        (v6 if ipaddress.ip_address(ip).version == 6 else v4).append(ip)
    return v4, v6


def _spoof_chain(port: PortFilter, index: int) -> list[str]:
    """Frames a port may send: its MAC, its addresses, no router advertisements."""
    v4, v6 = _split(port.ips)
    own6 = [*v6, link_local(port.mac)]
    na_targets = [hex(int(ipaddress.IPv6Address(a))) for a in own6]
    rules = [
        f"ether saddr != {port.mac} drop",
        "ether type vlan drop",
        f"ether type arp arp saddr ether != {port.mac} drop",
        # 0.0.0.0: ARP probes of duplicate address detection (RFC 5227).
        f"ether type arp arp saddr ip != {_set([*v4, '0.0.0.0'])} drop",
        f"ether type ip ip saddr != {_set(v4)} drop" if v4 else "ether type ip drop",
        # '::' is the source of duplicate address detection's solicitations.
        f"ether type ip6 ip6 saddr != {_set([*own6, '::'])} drop",
        "ether type ip6 icmpv6 type { nd-router-advert, nd-redirect } drop",
        # A neighbour advertisement's target address sits 8 bytes into the ICMPv6 header
        # (nft 1.0.6 has no name for it).
        f"ether type ip6 icmpv6 type nd-neighbor-advert @th,64,128 != {_set(na_targets)} drop",
        "ether type != { arp, ip, ip6 } drop",
        f"meta mark set {index:#x}",
    ]
    return rules


def _match(rule: FilterRule) -> str | None:
    """The nft match of one allow rule, or None if it can match nothing."""
    family = "ipv4" if rule.ethertype == "IPv4" else "ipv6"
    parts = [f"meta nfproto {family}"]
    if rule.protocol != "any":
        l4 = "ipv6-icmp" if rule.protocol == "icmpv6" else rule.protocol
        parts.append(f"meta l4proto {l4}")
        if rule.protocol in ("tcp", "udp") and rule.port_min is not None:
            high = rule.port_max if rule.port_max is not None else rule.port_min
            ports = str(rule.port_min) if high == rule.port_min else f"{rule.port_min}-{high}"
            parts.append(f"th dport {ports}")
    if rule.remote is not None:
        version = 4 if rule.ethertype == "IPv4" else 6
        peers = [p for p in rule.remote if ipaddress.ip_network(p, strict=False).version == version]
        if not peers:
            return None  # a remote group without ports, or only the other family's CIDRs
        field = "daddr" if rule.direction == "egress" else "saddr"
        parts.append(f"{'ip' if version == 4 else 'ip6'} {field} {_set(peers)}")
    return " ".join(parts)


def _group_chain(port: PortFilter, direction: str) -> list[str]:
    # Egress allows fall through (`return`) to the receiving port's ingress check; ingress
    # allows accept. Anything not allowed is dropped.
    verdict = "return" if direction == "egress" else "accept"
    rules = []
    for rule in port.rules:
        if rule.direction == direction and (match := _match(rule)) is not None:
            rules.append(f"{match} {verdict}")
    rules.append("drop")
    return rules


def _chain(name: str, rules: list[str], hook: str | None = None) -> list[str]:
    head = [f"    {hook}"] if hook else []
    return [f"  chain {name} {{", *head, *(f"    {r}" for r in rules), "  }"]


def _quoted(name: str) -> str:
    return f'"{name}"'


def _bridge_table(
    table: str, indexed: list[tuple[int, PortFilter]], uplinks: list[str]
) -> list[str]:
    lines = [f"table bridge {table}", f"delete table bridge {table}", f"table bridge {table} {{"]
    pre, fwd = [], []
    if indexed:
        jumps = _set(f"{_quoted(p.tap)} : jump from_{p.tap}" for _, p in indexed)
        pre.append(f"iifname vmap {jumps}")
        marks = _set(f"{_quoted(p.tap)} : jump to_{p.tap}" for _, p in indexed)
        fwd.append(f"oifname vmap {marks}")
    if uplinks:
        pre.append(f"iifname {_set(_quoted(u) for u in uplinks)} meta mark set 0")
    lines += _chain("prerouting", pre, "type filter hook prerouting priority -300; policy accept;")
    for index, port in indexed:
        lines += _chain(f"from_{port.tap}", _spoof_chain(port, index))
    lines += _chain("forward", fwd, "type filter hook forward priority -300; policy accept;")
    for index, port in indexed:
        lines += _chain(f"to_{port.tap}", [f"meta mark set meta mark | {index << 16:#x}"])
    return [*lines, "}"]


def _inet_table(
    table: str, indexed: list[tuple[int, PortFilter]], uplinks: list[tuple[str, int]]
) -> list[str]:
    lines = [f"table inet {table}", f"delete table inet {table}", f"table inet {table} {{"]
    zones = [(p.tap, p.zone) for _, p in indexed] + uplinks
    raw = []
    if zones:
        raw.append(f"ct zone set iifname map {_set(f'{_quoted(n)} : {z}' for n, z in zones)}")
    lines += _chain("prerouting", raw, "type filter hook prerouting priority raw; policy accept;")
    fwd = [
        "meta mark 0 accept",
        "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } accept",
        "ct state invalid drop",
        "ct state established,related accept",
    ]
    if indexed:
        egress = _set(f"{i:#x} : jump egress_{i}" for i, _ in indexed)
        ingress = _set(f"{i << 16:#x} : jump ingress_{i}" for i, _ in indexed)
        fwd += [f"meta mark & 0xffff vmap {egress}", f"meta mark & 0xffff0000 vmap {ingress}"]
    lines += _chain("forward", fwd, "type filter hook forward priority filter; policy accept;")
    for index, port in indexed:
        lines += _chain(f"egress_{index}", _group_chain(port, "egress"))
        lines += _chain(f"ingress_{index}", _group_chain(port, "ingress"))
    return [*lines, "}"]


def render(filters: FilterSet, prefix: str) -> str:
    """The nft script replacing both of Virga's tables with `filters`."""
    ports = sorted(filters.ports, key=lambda p: p.tap)
    if len(ports) > MAX_PORTS:
        raise ValueError(f"{len(ports)} ports exceed the {MAX_PORTS} one host can filter")
    table = table_name(prefix)
    indexed = list(enumerate(ports, start=1))
    uplinks = sorted(filters.uplinks)
    lines = _bridge_table(table, indexed, [name for name, _ in uplinks])
    lines += _inet_table(table, indexed, uplinks)
    return "\n".join(lines) + "\n"
