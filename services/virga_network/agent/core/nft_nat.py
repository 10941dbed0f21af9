"""Renders a router's NAT (`core.l3`) as nftables scripts for its namespace: one that makes
its table whole, one that changes only the floating IPs and networks that changed (each an
atomic transaction; a floating IP is one element of two maps, never a reload).

One table per router, `ip virga_nat`, in the router's own namespace:

* `to_fixed` (floating IP -> fixed address) on what comes in from the external leg (DNAT),
  and `to_floating` (fixed address -> floating IP) on what leaves by it (SNAT): 1:1 NAT.
* On the router's SNAT host, the rest of what leaves from its `networks` takes the router's
  own address; on its other hosts, the rest is dropped (`floated`: the fixed addresses with
  a floating IP here), never sent out with a tenant's fixed address.
* A guest reaching a floating IP of its router on this host is sent to the fixed address
  from the router's gateway address (hairpin NAT).
* Centralized SNAT (`core.l3`): on the router's other hosts, what a guest without a floating
  IP sends in by a leg with a `Redirect` to none of the router's networks (after DNAT: a
  floating IP here is hairpinned, not redirected) is marked `REDIRECT`, which policy routing
  sends to the SNAT port; on its SNAT host, flows coming in by a SNAT leg are marked in
  conntrack and their answers `ANSWER`, which routes them back by that leg.
* Nothing from the external network is routed inside unless a floating IP's DNAT sent it
  there or it answers a flow from inside: the tenant's fixed addresses are not reachable by
  routing to them. The router itself answers ping on its addresses and nothing else.
"""

from __future__ import annotations

from virga_network.agent.core import names
from virga_network.agent.core.plumbing import RouterPlumbing

TABLE = "virga_nat"
REDIRECT = 0x1
"""The packet mark of what a guest without a floating IP sends to the SNAT port."""
ANSWER = 0x2
"""The packet (and conntrack) mark of what came in by a SNAT leg and its answers."""


def _structure(router: RouterPlumbing) -> tuple[str, str | None, tuple[str, ...], tuple[str, ...]]:
    """What only a whole new table can change."""
    return router.veth, router.snat_ip, *_marked(router)


def _marked(router: RouterPlumbing) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The namespace's ends of the legs whose traffic is redirected, and of the SNAT legs."""
    redirected = tuple(names.veth_peer(leg.veth) for leg in router.interfaces if leg.redirect)
    snat = tuple(names.veth_peer(leg.snat.veth) for leg in router.interfaces if leg.snat)
    return redirected, snat


def _mark_chain(router: RouterPlumbing, ext: str) -> list[str]:
    redirected, snat = _marked(router)
    if not redirected and not snat:
        return []
    quoted = ", ".join
    # After DNAT (dstnat is -100): the destination is the one routed.
    lines = ["  chain steer {", "    type filter hook prerouting priority -90; policy accept;"]
    if redirected:
        legs = quoted(f'"{leg}"' for leg in redirected)
        lines.append(
            f"    iifname {{ {legs} }} ip saddr != @floated ip daddr != @networks"
            f" meta mark set {REDIRECT:#x}"
        )
    if snat:
        legs = quoted(f'"{leg}"' for leg in snat)
        lines += [
            f"    iifname {{ {legs} }} ct mark set {ANSWER:#x}",
            f"    iifname {ext} ct mark {ANSWER:#x} meta mark set {ANSWER:#x}",
        ]
    return [*lines, "  }"]


def _elements(router: RouterPlumbing) -> dict[str, dict[str, str]]:
    """Each map or set of the table -> its elements (key -> the element as nft writes it)."""
    return {
        "to_fixed": {f.floating_ip: f"{f.floating_ip} : {f.fixed_ip}" for f in router.floating},
        "to_floating": {f.fixed_ip: f"{f.fixed_ip} : {f.floating_ip}" for f in router.floating},
        "networks": {leg.cidr: leg.cidr for leg in router.interfaces},
        "floated": {f.fixed_ip: f.fixed_ip for f in router.floating},
    }


def render(router: RouterPlumbing) -> str:
    """The script that replaces the router's table with one for `router`."""
    ext = f'"{names.veth_peer(router.veth)}"'
    snat = (
        []
        if router.snat_ip is None
        else [f"    oifname {ext} ip saddr @networks snat to {router.snat_ip}"]
    )
    # Not the SNAT host: only floating IPs' traffic leaves (never a fixed address).
    unfloated = (
        [] if router.snat_ip is not None else [f"    oifname {ext} ip saddr != @floated drop"]
    )
    lines = [
        f"table ip {TABLE}",
        f"delete table ip {TABLE}",
        f"table ip {TABLE} {{",
        "  map to_fixed { type ipv4_addr : ipv4_addr; }",
        "  map to_floating { type ipv4_addr : ipv4_addr; }",
        "  set networks { type ipv4_addr; flags interval; }",
        "  set floated { type ipv4_addr; }",
        *_mark_chain(router, ext),
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
        # From outside, and from the router's own networks (hairpin: a guest reaching a
        # floating IP of its tenant on this host).
        "    dnat to ip daddr map @to_fixed",
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        f"    oifname {ext} snat to ip saddr map @to_floating",
        *snat,
        # A hairpinned flow's answer must come back through the router: it is the source.
        f"    oifname != {ext} ct status dnat ip saddr @networks masquerade",
        "  }",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        f"    iifname {ext} ct state established,related accept",
        f"    iifname {ext} ct status dnat accept",
        f"    iifname {ext} drop",
        *unfloated,
        "  }",
        "  chain input {",
        "    type filter hook input priority filter; policy accept;",
        f"    iifname {ext} ct state established,related accept",
        f"    iifname {ext} icmp type echo-request accept",
        f"    iifname {ext} drop",
        "  }",
        "}",
    ]
    for name, elements in _elements(router).items():
        lines += [f"add element ip {TABLE} {name} {{ {e} }}" for _, e in sorted(elements.items())]
    return "\n".join(lines) + "\n"


def render_changes(old: RouterPlumbing, new: RouterPlumbing) -> str:
    """The script that turns the table made for `old` into one for `new` ("" if nothing
    changed); a whole table if what changed is its structure (its SNAT address)."""
    if _structure(old) != _structure(new):
        return render(new)
    lines: list[str] = []
    before, after = _elements(old), _elements(new)
    for name in before:
        for key, element in sorted(before[name].items()):
            if after[name].get(key) != element:
                lines.append(f"delete element ip {TABLE} {name} {{ {key} }}")
    for name in after:
        for key, element in sorted(after[name].items()):
            if before[name].get(key) != element:
                lines.append(f"add element ip {TABLE} {name} {{ {element} }}")
    return "".join(f"{line}\n" for line in lines)
