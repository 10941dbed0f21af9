"""Renders a host's `FilterSet` as nftables scripts: one that replaces Virga's tables whole,
and one that changes only the ports that changed (each script is one atomic transaction).

Two tables per agent (named `virga_<prefix>`), whose hooks dispatch through named maps to
each port's own chains, so a port's filters can change without touching the others':

* `bridge`: anti-spoofing on frames entering from a port's tap (prerouting, before the bridge
  learns or forwards anything), and marks naming the ports a frame comes from (low 16 bits)
  and goes to (high 16 bits).
* `inet`: security groups. The kernel's bridge family has no connection tracking unless
  nf_conntrack_bridge is built, which it is not everywhere; br_netfilter is, and it passes
  bridged IPv4/IPv6 through the inet hooks where conntrack works. Those hooks see the bridge,
  not the port, hence the marks. Each network's traffic is tracked in its own conntrack zone
  so that two tenants' identical addresses never share a flow.

Both tables also filter the underlay, what comes in through a network's VXLAN tunnel (the
`inet` input hook and a chain per VXLAN interface in `bridge`): `nft_tunnels` renders those.

Neighbour discovery (solicitations, advertisements) always passes the security groups: its
forgeries are stopped by anti-spoofing, and without it IPv6 cannot work at all.
"""

from __future__ import annotations

import ipaddress

from virga_network.agent.core import nft_tunnels
from virga_network.agent.core.dhcpv6 import EDGE_ADDRESS6
from virga_network.agent.core.edge import EDGE_ADDRESS
from virga_network.agent.core.nft_text import link_local as link_local
from virga_network.agent.core.nft_text import nft_set as _set
from virga_network.agent.core.nft_text import split_ips as _split
from virga_network.agent.core.plumbing import FilterRule, FilterSet, PortFilter

MAX_PORTS = 0xFFFF
"""Ports one host can filter: a port's index must fit the 16 bits of a mark half."""


def table_name(prefix: str) -> str:
    return f"virga_{prefix}"


def _spoof_chain(port: PortFilter, index: int) -> list[str]:
    """Frames a port may send: its MAC, its addresses, no router advertisements."""
    v4, v6 = _split(port.ips)
    own6 = [*v6, link_local(port.mac)]
    na_targets = [hex(int(ipaddress.IPv6Address(a))) for a in own6]
    ipv4 = ["ether type ip drop"]
    if v4:
        ipv4 = [
            # DHCP before the guest has an address: exactly a broadcast DISCOVER or REQUEST.
            "ether type ip ether daddr ff:ff:ff:ff:ff:ff ip saddr 0.0.0.0 ip daddr 255.255.255.255"
            f" udp sport 68 udp dport 67 meta mark set {index:#x} accept",
            f"ether type ip ip saddr != {_set(v4)} drop",
        ]
    rules = [
        f"ether saddr != {port.mac} drop",
        "ether type vlan drop",
        f"ether type arp arp saddr ether != {port.mac} drop",
        # 0.0.0.0: ARP probes of duplicate address detection (RFC 5227).
        f"ether type arp arp saddr ip != {_set([*v4, '0.0.0.0'])} drop",
        # A guest never answers DHCP: only its network's edge does (`core.edge`).
        "ether type ip udp sport 67 drop",
        "ether type ip6 udp sport 547 drop",
        # A DHCP message names its client by the MAC inside it (chaddr, 28 bytes into the
        # message, after UDP's 8): the port's own, so the edge answers no one else's lease.
        f"ether type ip udp dport 67 @th,288,48 != 0x{port.mac.replace(':', '')} drop",
        *ipv4,
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
        # Normalised (host bits cleared) and deduplicated: nft refuses either in a set.
        networks = {ipaddress.ip_network(p, strict=False) for p in rule.remote}
        peers = [str(n) for n in sorted(n for n in networks if n.version == version)]
        if not peers:
            return None  # a remote group without ports, or only the other family's CIDRs
        field = "daddr" if rule.direction == "egress" else "saddr"
        parts.append(f"{'ip' if version == 4 else 'ip6'} {field} {_set(peers)}")
    return " ".join(parts)


_EDGE = {
    "egress": (
        "meta nfproto ipv4 udp sport 68 udp dport 67",
        f"meta nfproto ipv4 ip daddr {EDGE_ADDRESS} tcp dport 80",
        "meta nfproto ipv6 udp sport 546 udp dport 547",
    ),
    "ingress": (
        f"meta nfproto ipv4 ip saddr {EDGE_ADDRESS} udp sport 67 udp dport 68",
        f"meta nfproto ipv6 ip6 saddr {EDGE_ADDRESS6} udp sport 547 udp dport 546",
    ),
}


def _group_chain(port: PortFilter, direction: str) -> list[str]:
    """The port's security group rules in one direction; what they do not allow is dropped."""
    # Egress allows fall through (`return`) to the receiving port's ingress check; ingress
    # allows accept. Anything not allowed is dropped.
    verdict = "return" if direction == "egress" else "accept"
    # The edge (DHCP, metadata) is reachable whatever the groups say, and its DHCP answers
    # come in: only the edge can send from 169.254.169.254 or UDP port 67 (anti-spoofing).
    rules = [f"{match} {verdict}" for match in _EDGE[direction]]
    for rule in port.rules:
        if rule.direction == direction and (match := _match(rule)) is not None:
            rules.append(f"{match} {verdict}")
    rules.append("drop")
    return rules


def _quoted(name: str) -> str:
    return f'"{name}"'


class Marks:
    """Each filtered port's index (1..MAX_PORTS), kept while the port is: a port's chains and
    map entries can then be changed alone, without touching the others'."""

    def __init__(self) -> None:
        self.of: dict[str, int] = {}

    def assign(self, tap: str) -> int:
        index = self.of.get(tap)
        if index is None:
            used = set(self.of.values())
            index = next(i for i in range(1, len(used) + 2) if i not in used)
            if index > MAX_PORTS:
                raise ValueError(f"more than {MAX_PORTS} ports exceed what one host can filter")
            self.of[tap] = index
        return index

    def release(self, tap: str) -> int | None:
        return self.of.pop(tap, None)


def _tables(table: str, prefix: str) -> list[str]:
    """Both tables, empty but for their hooks and the maps that lead to each port's chains."""
    return [
        f"table bridge {table}",
        f"delete table bridge {table}",
        f"table bridge {table} {{",
        "  map in_ports { type ifname : verdict; }",
        "  map out_ports { type ifname : verdict; }",
        "  chain prerouting {",
        "    type filter hook prerouting priority -300; policy accept;",
        "    iifname vmap @in_ports",
        # A VXLAN interface's own chain (in in_ports) accepts what it lets in.
        f'    iifname "{prefix}x*" drop',
        "  }",
        "  chain forward {",
        "    type filter hook forward priority -300; policy accept;",
        "    oifname vmap @out_ports",
        "  }",
        *nft_tunnels.bridge_lines(prefix),
        "}",
        f"table inet {table}",
        f"delete table inet {table}",
        f"table inet {table} {{",
        "  map zones { typeof iifname : ct zone; }",
        "  map egress { type mark : verdict; }",
        "  map ingress { type mark : verdict; }",
        "  chain prerouting {",
        "    type filter hook prerouting priority raw; policy accept;",
        "    ct zone set iifname map @zones",
        "  }",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        # Only what crosses a Virga bridge is ours (br_netfilter shows the bridge here);
        # another program's marks on the host's own traffic must not lead to a port's chain.
        f'    iifname != "{prefix}b*" accept',
        "    meta mark 0 accept",
        # Router advertisements come only from the edge: a port's and the tunnel's are dropped.
        "    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit,"
        " nd-router-advert } accept",
        "    ct state invalid drop",
        "    ct state established,related accept",
        "    meta mark & 0xffff vmap @egress",
        "    meta mark & 0xffff0000 vmap @ingress",
        "  }",
        *nft_tunnels.inet_lines(),
        "}",
    ]


def _set_chain(family: str, table: str, chain: str, rules: list[str]) -> list[str]:
    # add + flush makes a chain's rules exactly these, whether it existed or not.
    head = [f"add chain {family} {table} {chain}", f"flush chain {family} {table} {chain}"]
    return head + [f"add rule {family} {table} {chain} {rule}" for rule in rules]


def _add_port(table: str, port: PortFilter, index: int) -> list[str]:
    tap = _quoted(port.tap)
    return [
        *_set_chain("bridge", table, f"from_{port.tap}", _spoof_chain(port, index)),
        *_set_chain(
            "bridge", table, f"to_{port.tap}", [f"meta mark set meta mark | {index << 16:#x}"]
        ),
        f"add element bridge {table} in_ports {{ {tap} : jump from_{port.tap} }}",
        f"add element bridge {table} out_ports {{ {tap} : jump to_{port.tap} }}",
        *_set_chain("inet", table, f"egress_{port.tap}", _group_chain(port, "egress")),
        *_set_chain("inet", table, f"ingress_{port.tap}", _group_chain(port, "ingress")),
        f"add element inet {table} zones {{ {tap} : {port.zone} }}",
        f"add element inet {table} egress {{ {index:#x} : jump egress_{port.tap} }}",
        f"add element inet {table} ingress {{ {index << 16:#x} : jump ingress_{port.tap} }}",
    ]


def _remove_port(table: str, tap: str, index: int) -> list[str]:
    # Map entries first: a chain still jumped to cannot be deleted.
    return [
        f"delete element bridge {table} in_ports {{ {_quoted(tap)} }}",
        f"delete element bridge {table} out_ports {{ {_quoted(tap)} }}",
        f"delete element inet {table} zones {{ {_quoted(tap)} }}",
        f"delete element inet {table} egress {{ {index:#x} }}",
        f"delete element inet {table} ingress {{ {index << 16:#x} }}",
        f"delete chain bridge {table} from_{tap}",
        f"delete chain bridge {table} to_{tap}",
        f"delete chain inet {table} egress_{tap}",
        f"delete chain inet {table} ingress_{tap}",
    ]


def _add_uplink(table: str, name: str, zone: int) -> list[str]:
    return [f"add element inet {table} zones {{ {_quoted(name)} : {zone} }}"]


def _remove_uplink(table: str, name: str) -> list[str]:
    return [f"delete element inet {table} zones {{ {_quoted(name)} }}"]


def render(filters: FilterSet, prefix: str, marks: Marks) -> str:
    """The nft script replacing both of Virga's tables with `filters`; `marks` starts over."""
    table = table_name(prefix)
    marks.of.clear()
    lines = _tables(table, prefix)
    for port in sorted(filters.ports, key=lambda p: p.tap):
        lines += _add_port(table, port, marks.assign(port.tap))
    for name, zone in sorted(filters.uplinks):
        lines += _add_uplink(table, name, zone)
    lines += nft_tunnels.tunnel_changes(table, (), filters.tunnels)
    lines += nft_tunnels.routed_changes(table, (), filters.routed)
    return "\n".join(lines) + "\n"


def render_changes(old: FilterSet, new: FilterSet, prefix: str, marks: Marks) -> str:
    """The nft script turning `old` (loaded, with `marks`) into `new`; "" if they agree.

    Only ports that changed are rewritten, so a host's 500th port costs what its first did.
    """
    table = table_name(prefix)
    before = {p.tap: p for p in old.ports}
    after = {p.tap: p for p in new.ports}
    lines: list[str] = []
    for tap in sorted(before.keys() - after.keys()):
        index = marks.release(tap)
        if index is not None:
            lines += _remove_port(table, tap, index)
    uplinks_before, uplinks_after = dict(old.uplinks), dict(new.uplinks)
    for name in sorted(uplinks_before):
        if uplinks_after.get(name) != uplinks_before[name]:
            lines += _remove_uplink(table, name)
    for tap in sorted(after):
        port, previous = after[tap], before.get(tap)
        if port == previous:
            continue
        if previous is not None and previous.zone != port.zone:
            lines.append(f"delete element inet {table} zones {{ {_quoted(tap)} }}")
        lines += _add_port(table, port, marks.assign(tap))
    for name, zone in sorted(uplinks_after.items()):
        if uplinks_before.get(name) != zone:
            lines += _add_uplink(table, name, zone)
    lines += nft_tunnels.tunnel_changes(table, old.tunnels, new.tunnels)
    lines += nft_tunnels.routed_changes(table, old.routed, new.routed)
    return "\n".join(lines) + "\n" if lines else ""
