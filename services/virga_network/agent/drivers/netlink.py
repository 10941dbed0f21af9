"""The real network driver: links and VXLAN forwarding entries over netlink (pyroute2), filters
with nftables (the `nft` command).

pyroute2's calls block, so they run on one worker thread that owns the netlink socket; `nft`
runs as a subprocess. The agent runs in the host's network namespace (tests start it inside a
namespace with `ip netns exec`), and everything here acts on that namespace only.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import structlog
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netns import setns

from virga_network.agent.core import names, nft_rules
from virga_network.agent.core.plumbing import (
    VXLAN_PORT,
    FilterSet,
    NetworkPlumbing,
    RouterPlumbing,
    TapKind,
)
from virga_network.agent.drivers import netlink_edge, netlink_router
from virga_network.agent.drivers.base import DriverError, HostInventory

log = structlog.get_logger(__name__)
T = TypeVar("T")
NTF_SELF = 0x02
NUD_PERMANENT_NOARP = 0x80 | 0x40
_SYSCTLS = ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables")


def _kind(link: Any) -> str | None:
    info = link.get("IFLA_LINKINFO")
    return None if info is None else info.get("IFLA_INFO_KIND")


def _disable_ipv6(name: str) -> None:
    # The host has no business on a tenant's segment: no link-local address of its own there.
    path = Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6")
    if path.exists():
        path.write_text("1\n")


class NetlinkDriver:
    """`NetworkDriver` over pyroute2 and nft, for the namespace the process runs in."""

    def __init__(
        self,
        *,
        prefix: str = names.DEFAULT_PREFIX,
        tap_kind: TapKind = "tap",
        netns: str | None = None,
        host: str = "",
    ) -> None:
        """`netns`: act in that named namespace instead of the process's own (tests and
        benchmarks drive a namespace from outside; the agent itself leaves it None); `host`:
        this host's name, which ends its edges' namespace names."""
        self._host = host
        self._prefix = names.check_prefix(prefix)
        self._tap_kind = tap_kind
        self._netns = netns
        # One thread owns the netlink socket; with `netns` it enters that namespace first
        # (setns moves only the calling thread).
        self._executor = ThreadPoolExecutor(
            1, thread_name_prefix="netlink", initializer=self._enter_netns
        )
        self._ipr: IPRoute | None = None
        self._filters: FilterSet | None = None
        """What our tables hold, as last loaded by this driver; None: replace them whole."""
        self._marks = nft_rules.Marks()
        self._routers: dict[str, RouterPlumbing] = {}
        """Namespace -> the router as this driver last made it in full."""

    def _enter_netns(self) -> None:
        if self._netns is not None:
            setns(self._netns, flags=0)

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, call, *args)
        except NetlinkError as exc:
            raise DriverError(f"netlink: {exc}") from exc
        except OSError as exc:
            raise DriverError(str(exc)) from exc

    def _ip(self) -> IPRoute:
        if self._ipr is None:
            self._ipr = IPRoute()
        return self._ipr

    def _index(self, name: str) -> int | None:
        try:
            (link,) = self._ip().link("get", ifname=name)  # one request, no dump of all links
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return None
            raise
        index: int = link["index"]
        return index

    # -- host -----------------------------------------------------------------------------

    async def prepare(self) -> None:
        await self._nft(["--version"])
        await self._run(self._sysctls)

    def _sysctls(self) -> None:
        for name in _SYSCTLS:
            path = Path("/proc/sys/net/bridge") / name
            if not path.exists():
                raise DriverError(
                    f"{path} is missing: load br_netfilter (security groups need conntrack on "
                    "bridged traffic)"
                )
            path.write_text("1\n")

    async def _nft(self, args: list[str], script: str | None = None) -> str:
        try:
            netns = ["ip", "netns", "exec", self._netns] if self._netns is not None else []
            process = await asyncio.create_subprocess_exec(
                *netns,
                "nft",
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise DriverError("nft is not installed (Debian package nftables)") from None
        out, err = await process.communicate(None if script is None else script.encode())
        if process.returncode != 0:
            raise DriverError(f"nft {' '.join(args)} failed: {err.decode().strip()}")
        return out.decode()

    # -- networks -------------------------------------------------------------------------

    async def ensure_network(self, network: NetworkPlumbing, vtep_ip: str) -> None:
        if not 0 < network.vni < 1 << 24:
            raise DriverError(f"VXLAN id {network.vni} is out of range")
        await self._run(self._ensure_network, network, vtep_ip)
        if network.edge is not None:
            await netlink_edge.ensure_edge(network.edge, network.bridge, self._netns)
            await self._run(_disable_ipv6, network.edge.veth)

    def _ensure_network(self, network: NetworkPlumbing, vtep_ip: str) -> None:
        ip = self._ip()
        bridge = self._index(network.bridge)
        if bridge is None:
            self._add(ifname=network.bridge, kind="bridge")
            bridge = self._index(network.bridge)
            assert bridge is not None
        _disable_ipv6(network.bridge)
        ip.link("set", index=bridge, state="up")
        vxlan = self._index(network.vxlan)
        if vxlan is not None and not self._vxlan_matches(vxlan, network.vni, vtep_ip):
            ip.link("del", index=vxlan)
            vxlan = None
        if vxlan is None:
            # An IPv6 VTEP is IFLA_VXLAN_LOCAL6: IFLA_VXLAN_LOCAL takes IPv4 only.
            local = "vxlan_local6" if _is_ipv6(vtep_ip) else "vxlan_local"
            self._add(
                ifname=network.vxlan,
                kind="vxlan",
                vxlan_id=network.vni,
                vxlan_port=VXLAN_PORT,
                vxlan_learning=0,
                **{local: vtep_ip},
            )
            vxlan = self._index(network.vxlan)
            assert vxlan is not None
        _disable_ipv6(network.vxlan)
        ip.link("set", index=vxlan, master=bridge, state="up")
        self._sync_forwarding(vxlan, network.forwarding())

    def _add(self, **spec: Any) -> None:
        try:
            self._ip().link("add", **spec)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:  # made meanwhile: as good as made here
                raise

    def _vxlan_matches(self, index: int, vni: int, vtep_ip: str) -> bool:
        (link,) = self._ip().get_links(index)
        info = link.get("IFLA_LINKINFO")
        data = info.get("IFLA_INFO_DATA") if info is not None else None
        return (
            _kind(link) == "vxlan"
            and data is not None
            and data.get("IFLA_VXLAN_ID") == vni
            and _same_address(
                data.get("IFLA_VXLAN_LOCAL6" if _is_ipv6(vtep_ip) else "IFLA_VXLAN_LOCAL"),
                vtep_ip,
            )
        )

    def _entries(self, index: int) -> set[tuple[str, str]]:
        entries = set()
        for entry in self._ip().fdb("dump", ifindex=index):
            dst = entry.get("NDA_DST")
            if entry["ifindex"] == index and dst is not None and entry["flags"] & NTF_SELF:
                entries.add((entry.get("NDA_LLADDR"), dst))
        return entries

    def _sync_forwarding(self, index: int, wanted: frozenset[tuple[str, str]]) -> None:
        ip = self._ip()
        present = self._entries(index)
        for mac, dst in present - wanted:
            ip.fdb("del", ifindex=index, lladdr=mac, dst=dst, flags=NTF_SELF)
        for mac, dst in wanted - present:
            ip.fdb(
                "append",
                ifindex=index,
                lladdr=mac,
                dst=dst,
                flags=NTF_SELF,
                state=NUD_PERMANENT_NOARP,
            )

    async def forwarding(self, vxlan: str) -> frozenset[tuple[str, str]]:
        def read() -> frozenset[tuple[str, str]]:
            index = self._index(vxlan)
            return frozenset() if index is None else frozenset(self._entries(index))

        return await self._run(read)

    async def remove_network(self, bridge: str, vxlan: str) -> None:
        edge = f"{bridge[: -names.DIGITS - 1]}e{bridge[-names.DIGITS :]}"
        await netlink_edge.remove_edge(f"{edge}-{self._host}")
        await self._run(self._remove, vxlan)
        await self._run(self._remove, bridge)

    # -- ports ----------------------------------------------------------------------------

    async def ensure_port(self, tap: str, bridge: str, *, kind: TapKind | None = None) -> None:
        await self._run(self._ensure_port, tap, bridge, kind or self._tap_kind)

    def _ensure_port(self, tap: str, bridge: str, kind: TapKind) -> None:
        master = self._index(bridge)
        if master is None:
            raise DriverError(f"bridge {bridge} does not exist")
        if kind == "veth":
            # Made straight away ("exists" is fine): a lookup first costs a round trip more.
            self._add(ifname=tap, kind="veth", peer={"ifname": names.veth_peer(tap)})
        elif self._index(tap) is None:
            # Looked up first: opening an existing tap a guest holds would fail with EBUSY.
            self._add(ifname=tap, kind="tuntap", mode="tap")
        index = self._index(tap)
        if index is None:
            raise DriverError(f"tap {tap} vanished while being made")
        _disable_ipv6(tap)
        self._ip().link("set", index=index, master=master, state="up")

    async def guest_frames(self, tap: str) -> int:
        def read() -> int:
            index = self._index(tap)
            if index is None:
                return 0
            (link,) = self._ip().get_links(index)
            stats = link.get_attr("IFLA_STATS64") or link.get_attr("IFLA_STATS")
            return int(stats["rx_packets"]) if stats is not None else 0

        return await self._run(read)

    async def remove_port(self, tap: str) -> None:
        await self._run(self._remove, tap)  # a veth's peer goes with it

    def _remove(self, name: str) -> None:
        index = self._index(name)
        if index is None:
            return
        try:
            self._ip().link("del", index=index)
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:
                raise

    # -- filters and inventory --------------------------------------------------------------

    async def apply_filters(self, filters: FilterSet) -> None:
        loaded, self._filters = self._filters, None  # unknown until this load succeeds
        try:
            if loaded is not None:
                script = nft_rules.render_changes(loaded, filters, self._prefix, self._marks)
                try:
                    if script:
                        await self._nft(["-f", "-"], script)
                    self._filters = filters
                    return
                except DriverError as exc:
                    # Someone changed our tables behind our back: start them over.
                    log.warning("nft_changes_refused", reason=str(exc))
            await self._nft(["-f", "-"], nft_rules.render(filters, self._prefix, self._marks))
        except ValueError as exc:
            raise DriverError(str(exc)) from exc
        self._filters = filters

    # -- routers (`core.l3`) ----------------------------------------------------------------

    async def ensure_router(self, router: RouterPlumbing) -> None:
        previous = self._routers.pop(router.namespace, None)  # unknown until this succeeds
        await netlink_router.ensure_router(router, previous, self._netns)
        self._routers[router.namespace] = router

    async def remove_router(self, namespace: str) -> None:
        self._routers.pop(namespace, None)
        await netlink_router.remove_router(namespace)

    async def inventory(self) -> HostInventory:
        links = await self._run(lambda: list(self._ip().get_links()))
        by_index = {link["index"]: link.get("IFLA_IFNAME") for link in links}
        found: dict[str, set[str]] = {"b": set(), "x": set(), "t": set(), "e": set()}
        ports_of: dict[str, set[str]] = {}
        for link in links:
            name = link.get("IFLA_IFNAME")
            kind = names.kind_of(name, self._prefix)
            if kind is None:
                continue
            found[kind].add(name)
            master = by_index.get(link.get("IFLA_MASTER"))
            if master is not None:
                ports_of.setdefault(master, set()).add(name)
        return HostInventory(
            bridges=frozenset(found["b"]),
            vxlans=frozenset(found["x"]),
            taps=frozenset(found["t"]),
            filtered=await self._filtered(),
            ports_of={bridge: frozenset(members) for bridge, members in ports_of.items()},
            edges=await asyncio.to_thread(netlink_edge.edges, self._prefix, self._host),
            routers=await asyncio.to_thread(netlink_router.routers, self._prefix, self._host),
        )

    async def _filtered(self) -> frozenset[str]:
        table = nft_rules.table_name(self._prefix)
        try:
            listing = json.loads(await self._nft(["-j", "list", "table", "bridge", table]))
        except DriverError:
            return frozenset()  # no table yet: nothing filtered
        chains = (item["chain"]["name"] for item in listing["nftables"] if "chain" in item)
        return frozenset(c.removeprefix("from_") for c in chains if c.startswith("from_"))

    async def close(self) -> None:
        await netlink_router.settle()
        if self._ipr is not None:
            await self._run(self._ipr.close)
            self._ipr = None
        self._executor.shutdown(wait=True)


def _is_ipv6(address: str) -> bool:
    return ipaddress.ip_address(address).version == 6


def _same_address(found: object, wanted: str) -> bool:
    """`found` (the kernel's text, compressed) is the address `wanted` however it is written."""
    if not isinstance(found, str):
        return False
    try:
        return ipaddress.ip_address(found) == ipaddress.ip_address(wanted)
    except ValueError:
        return False
