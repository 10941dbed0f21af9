"""The underlay's filters as nftables text: what may come in through a network's VXLAN tunnel.

Two checks, in the agent's two tables (`nft_rules` renders the tables and calls these):

* `inet`, input hook, before the kernel decapsulates anything: UDP to the VXLAN port is
  dropped unless its (outer source address, VXLAN id, inner source MAC) is a remote port of a
  network this host has, as the log places it: the port's MAC, from the VTEP of the host it is
  bound on, on its network's VXLAN id. The VXLAN id and inner MAC are read from the UDP
  payload with raw payload expressions (`@th,<bit offset>,<bits>`, the transport header
  being UDP's): the VXLAN header's id is bits 32-55 of the 8 bytes after UDP's 8, and the
  inner frame's source MAC is bytes 6-11 after those. So a host that is not a known VTEP
  cannot inject anything, and a known one only frames of its own ports into their networks.
* `bridge`, prerouting, on frames the VXLAN interface hands to the bridge: the same
  anti-spoofing as a tap's, over all the network's remote ports at once, each address bound
  to its port's MAC: IPv4, IPv6 and ARP senders only with an address of the port whose MAC
  they carry (plus its EUI-64 link-local, `::` and `0.0.0.0` for duplicate address
  detection), neighbour advertisements only for those, no router advertisements, redirects,
  VLAN tags or other ethertypes. With the input check this ties every address to the host
  that sends it. One exception, a router's SNAT port (`RemotePort.routed`, from its SNAT
  host's VTEP only): its IPv4 packets may carry any source address, as they are the external
  network's answers it routes back to the guests (its ARP still only its own address). And
  a router's routed frames (`RemotePort.forwarded`, `core.dvr`): IP packets only, from the
  addresses of its host's ports on the router's other networks; no ARP or neighbour
  discovery at all.

And what leaves by a tunnel: in `bridge`, forward hook, a router leg's frames onto a VXLAN
interface get the source MAC of the router on this host (`routed`, a map from the leg), so
the router's MAC, the same on every host, never crosses the underlay.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from virga_network.agent.core.nft_text import link_local, nft_set, split_ips
from virga_network.agent.core.plumbing import VXLAN_PORT, TunnelFilter

_KEY = "@th,96,24 . @th,176,48"
"""The VXLAN id and the inner frame's source MAC, as bits of the UDP header and payload."""

Sender = tuple[int, str, int, str]
"""(IP version, VTEP, VXLAN id, MAC): one (outer source, id, inner source) the host accepts."""


def inet_lines() -> list[str]:
    """The underlay's sets and chains, inside the inet table's block."""
    return [
        f"  set underlay4 {{ typeof ip saddr . {_KEY}; }}",
        f"  set underlay6 {{ typeof ip6 saddr . {_KEY}; }}",
        "  chain input {",
        "    type filter hook input priority filter; policy accept;",
        f"    udp dport {VXLAN_PORT} jump underlay",
        "  }",
        "  chain underlay {",
        f"    ip saddr . {_KEY} @underlay4 accept",
        f"    ip6 saddr . {_KEY} @underlay6 accept",
        "    drop",
        "  }",
    ]


def bridge_lines(prefix: str) -> list[str]:
    """The rewrite of routed frames' source MACs, inside the bridge table's block."""
    return [
        "  map routed { typeof iifname : ether saddr; }",
        "  chain routed_out {",
        "    type filter hook forward priority -200; policy accept;",
        f'    oifname "{prefix}x*" ether saddr set iifname map @routed',
        "  }",
    ]


def routed_changes(
    table: str, before: Iterable[tuple[str, str]], after: Iterable[tuple[str, str]]
) -> list[str]:
    """The `routed` map's elements to delete and add: (router leg, this host's MAC)."""
    old, new = dict(before), dict(after)
    lines = [
        f'delete element bridge {table} routed {{ "{leg}" }}'
        for leg in sorted(old)
        if new.get(leg) != old[leg]
    ]
    return lines + [
        f'add element bridge {table} routed {{ "{leg}" : {mac} }}'
        for leg, mac in sorted(new.items())
        if old.get(leg) != mac
    ]


def senders(tunnels: Iterable[TunnelFilter]) -> set[Sender]:
    return {
        (ipaddress.ip_address(r.vtep).version, r.vtep, t.vni, r.mac)
        for t in tunnels
        for r in t.remotes
    }


def _element(sender: Sender) -> tuple[str, str]:
    version, vtep, vni, mac = sender
    return f"underlay{version}", f"{vtep} . {vni} . 0x{mac.replace(':', '')}"


def sender_changes(table: str, before: set[Sender], after: set[Sender]) -> list[str]:
    """Set elements to delete (`before` only) and add (`after` only)."""
    lines = []
    for sender in sorted(before - after):
        name, element = _element(sender)
        lines.append(f"delete element inet {table} {name} {{ {element} }}")
    for sender in sorted(after - before):
        name, element = _element(sender)
        lines.append(f"add element inet {table} {name} {{ {element} }}")
    return lines


def chain_name(vxlan: str) -> str:
    return f"tunnel_{vxlan}"


def _tunnel_chain(tunnel: TunnelFilter) -> list[str]:
    """Frames the tunnel may hand to the bridge: its remote ports', each with its addresses."""
    if not tunnel.remotes:
        return ["drop"]
    macs: set[str] = set()
    arp: set[str] = set()
    v4: set[str] = set()
    v6: set[str] = set()
    targets: set[str] = set()
    routed = sorted({remote.mac for remote in tunnel.remotes if remote.routed})
    # A SNAT port's IPv4 packets: any source (see the module's doc).
    ipv4 = f"ether type ip ether saddr != {nft_set(routed)}" if routed else "ether type ip"
    for remote in tunnel.remotes:
        mac = remote.mac
        own4, own6 = split_ips(remote.ips)
        macs.add(mac)
        if remote.forwarded:
            # Routed by another host's router: IP from the addresses it routes, nothing else.
            v4 |= {f"{mac} . {ip}" for ip in own4}
            v6 |= {f"{mac} . {ip}" for ip in own6}
            continue
        own6.append(link_local(mac))
        # 0.0.0.0: ARP probes of duplicate address detection (RFC 5227).
        arp |= {f"{mac} . {mac} . {ip}" for ip in [*own4, "0.0.0.0"]}
        v4 |= {f"{mac} . {ip}" for ip in own4}
        # '::' is the source of duplicate address detection's solicitations.
        v6 |= {f"{mac} . {ip}" for ip in [*own6, "::"]}
        targets |= {f"{mac} . {int(ipaddress.IPv6Address(ip)):#x}" for ip in own6}
    return [
        f"ether saddr != {nft_set(sorted(macs))} drop",
        "ether type vlan drop",
        _unless("ether type arp", "ether saddr . arp saddr ether . arp saddr ip", arp),
        _unless(ipv4, "ether saddr . ip saddr", v4),
        _unless("ether type ip6", "ether saddr . ip6 saddr", v6),
        "ether type ip6 icmpv6 type { nd-router-advert, nd-redirect } drop",
        # A neighbour advertisement's target address sits 8 bytes into the ICMPv6 header.
        _unless(
            "ether type ip6 icmpv6 type nd-neighbor-advert", "ether saddr . @th,64,128", targets
        ),
        "ether type != { arp, ip, ip6 } drop",
        # Mark 0: no sender's egress rules here (they ran on its host), the receiver's do.
        "meta mark set 0 accept",
    ]


def _unless(match: str, key: str, allowed: set[str]) -> str:
    """Drop what `match`es unless its `key` is `allowed` (all of it when nothing is)."""
    if not allowed:
        return f"{match} drop"
    return f"{match} {key} != {nft_set(sorted(allowed))} drop"


def add_tunnel(table: str, tunnel: TunnelFilter) -> list[str]:
    chain = chain_name(tunnel.vxlan)
    return [
        f"add chain bridge {table} {chain}",
        f"flush chain bridge {table} {chain}",
        *(f"add rule bridge {table} {chain} {rule}" for rule in _tunnel_chain(tunnel)),
        f'add element bridge {table} in_ports {{ "{tunnel.vxlan}" : jump {chain} }}',
    ]


def remove_tunnel(table: str, vxlan: str) -> list[str]:
    # The map entry first: a chain still jumped to cannot be deleted.
    return [
        f'delete element bridge {table} in_ports {{ "{vxlan}" }}',
        f"delete chain bridge {table} {chain_name(vxlan)}",
    ]


def tunnel_changes(
    table: str, before: Iterable[TunnelFilter], after: Iterable[TunnelFilter]
) -> list[str]:
    """Turn the loaded tunnels `before` into `after`: removed, changed and new ones only."""
    old = {t.vxlan: t for t in before}
    new = {t.vxlan: t for t in after}
    lines: list[str] = []
    for vxlan in sorted(old.keys() - new.keys()):
        lines += remove_tunnel(table, vxlan)
    for vxlan in sorted(new):
        if old.get(vxlan) != new[vxlan]:
            lines += add_tunnel(table, new[vxlan])
    return lines + sender_changes(table, senders(old.values()), senders(new.values()))
