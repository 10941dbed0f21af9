"""Centralized SNAT in a router's namespace (`core.l3`): the SNAT legs of its SNAT host and
the redirects of its other hosts, as lines of the namespace's `ip -batch`, their sysctls, and
the policy routing rules that pick them (`nft_nat` marks the packets).

* SNAT host: the SNAT port's address has no route in the main table (`noprefixroute`: the
  gateway leg keeps routing the network); table `SnatLeg.table` routes the network by the
  SNAT leg, for the answers marked `ANSWER` only. The leg answers ARP for its own address
  only (`arp_ignore`), asks with it (`arp_announce`), and takes sources the main table
  routes by the gateway leg (`rp_filter` off).
* Other hosts: table `Redirect.table` has a default route to the SNAT port's address by the
  redirect leg, its MAC a permanent neighbour (never asked for); traffic marked `REDIRECT`
  (`nft_nat`: to none of the router's networks) from the network's gateway leg takes it.
  The redirect leg has no address and answers no ARP (`arp_ignore`).

Used by `netlink_router`; idempotent, and the rules of legs no longer wanted are removed.
"""

from __future__ import annotations

import json

from virga_network.agent.core import names
from virga_network.agent.core.nft_nat import ANSWER, REDIRECT
from virga_network.agent.core.plumbing import RouterInterface, RouterPlumbing

PRIORITIES = (1000, 1001)
"""The rules' priorities: answers to the SNAT leg, the redirect; before the main table's
rule (32766)."""


def bridge_ends(leg: RouterInterface) -> list[tuple[str, str]]:
    """(host end, MAC) of each of the leg's veths on the network's bridge."""
    extra = leg.snat or leg.redirect
    return [(leg.veth, leg.mac)] + ([] if extra is None else [(extra.veth, extra.mac)])


def lines(leg: RouterInterface) -> list[str]:
    """The namespace's lines that configure the leg's SNAT side, after its links exist."""
    if leg.snat is not None:
        peer = names.veth_peer(leg.snat.veth)
        return [
            f"link set {peer} address {leg.snat.mac} addrgenmode none up",
            f"addr replace {leg.snat.address} dev {peer} noprefixroute",
            f"route replace {leg.cidr} dev {peer} table {leg.snat.table}",
        ]
    if leg.redirect is not None:
        redirect, peer = leg.redirect, names.veth_peer(leg.redirect.veth)
        return [
            f"link set {peer} address {redirect.mac} addrgenmode none up",
            f"neigh replace {redirect.snat_ip} lladdr {redirect.snat_mac} dev {peer} nud permanent",
            f"route replace default via {redirect.snat_ip} dev {peer} onlink"
            f" table {redirect.table}",
        ]
    return []


def sysctls(router: RouterPlumbing) -> list[str]:
    """`sysctl -w` arguments for the SNAT legs and the redirects: on the same bridge as the
    gateway leg, neither may answer ARP for the gateway address (the guests would send to
    it)."""
    settings: list[str] = []
    for leg in router.interfaces:
        if leg.snat is not None:
            conf = f"net.ipv4.conf.{names.veth_peer(leg.snat.veth)}"
            settings += [f"{conf}.arp_ignore=1", f"{conf}.arp_announce=2", f"{conf}.rp_filter=0"]
        if leg.redirect is not None:
            settings.append(f"net.ipv4.conf.{names.veth_peer(leg.redirect.veth)}.arp_ignore=1")
    return settings


def wanted_rules(router: RouterPlumbing) -> set[str]:
    """The policy rules the router's SNAT side needs, as `ip rule` arguments."""
    rules: set[str] = set()
    for leg in router.interfaces:
        if leg.snat is not None:
            rules.add(f"pref 1000 to {leg.cidr} fwmark {ANSWER:#x} lookup {leg.snat.table}")
        if leg.redirect is not None:
            rules.add(
                f"pref 1001 from {leg.cidr} fwmark {REDIRECT:#x}"
                f" iif {names.veth_peer(leg.veth)} lookup {leg.redirect.table}"
            )
    return rules


def _spelled(rule: dict[str, object]) -> str:
    """A rule of `ip -j rule show` as `wanted_rules` spells it."""
    words = [f"pref {rule['priority']}"]
    if "srclen" in rule:
        words.append(f"from {rule['src']}/{rule['srclen']}")
    if "dstlen" in rule:
        words.append(f"to {rule['dst']}/{rule['dstlen']}")
    if "fwmark" in rule:
        words.append(f"fwmark {rule['fwmark']}")
    if "iif" in rule:
        words.append(f"iif {rule['iif']}")
    words.append(f"lookup {rule['table']}")
    if "suppress_prefixlen" in rule:
        words.append(f"suppress_prefixlength {rule['suppress_prefixlen']}")
    return " ".join(words)


def rule_changes(listing: str, wanted: set[str]) -> list[str]:
    """`ip -batch` lines turning the namespace's rules (`ip -j rule show`) into `wanted`."""
    have = {
        _spelled(rule) for rule in json.loads(listing or "[]") if rule["priority"] in PRIORITIES
    }
    return [f"rule del {r}" for r in sorted(have - wanted)] + [
        f"rule add {r}" for r in sorted(wanted - have)
    ]
