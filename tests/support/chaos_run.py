"""The chaos tests' run: service processes SIGKILLed at random and supervised while the
clients (`tests.support.chaos`) submit keyed requests and Kafka is disturbed once, then every
check of what must hold afterwards. Each chaos test (tests/chaos/) says how Kafka runs and
what happens to it; everything else is here.

Afterwards every accepted request must have reached a final state that its last accepted
action explains, exactly once (the tenant's instances are the ones accepted, none twice), the
Ceph pool must hold exactly what the log accounts for, no address or MAC may be handed out
twice, the cross-service invariants of `virga audit check` must hold, and the tenant's usage
as the API rates it must equal a re-rating of the raw events (`virga audit rerate`'s code).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import msgspec

from tests.support.api import Api
from tests.support.chaos import Ledger, Network, clients, submit
from tests.support.netns import links, sh
from tests.support.pool import audit_namespace
from tests.support.stack import HostSpec, Stack, on_ceph
from virga_audit import check
from virga_audit.replay import replay_state, service_definition
from virga_audit.rerate import END_OF_TIME
from virga_devstack.ceph import CephCluster
from virga_eventlog import KafkaSettings
from virga_network.agent.core import names
from virga_rating.rating import rate_window, total
from virga_storage.drivers.rbd import RbdDriver


@contextlib.contextmanager
def chaos_stack(
    bootstrap: str, ceph: CephCluster, run_dir: Path, hosts: tuple[HostSpec, ...], prefix: str
) -> Iterator[Stack]:
    """Every service as its own process on `bootstrap`, volumes on `ceph`, billing on, and a
    network agent on the first host naming its interfaces with `prefix` (removed after)."""
    stack = Stack(
        bootstrap,
        run_dir,
        hosts,
        **on_ceph(ceph),
        billing=True,
        network_agent_prefix=prefix,
    )
    try:
        with stack.running():
            yield stack
    finally:
        for name in virga_links(prefix):  # the agent leaves its plumbing when stopped
            sh("ip", "link", "del", name, check=False)


@dataclass
class Havoc:
    """What the chaos driver did."""

    kills: list[str] = field(default_factory=list)
    restarts: int = 0
    broker_restarted: bool = False
    broker: str = ""
    """Which broker was disturbed, and how (said by the disturbance)."""


Disturbance = Callable[[Havoc], Awaitable[None]]
"""What happens to Kafka once, after the third kill: restarting the broker, killing one of
a cluster's...; it sets `Havoc.broker_restarted` when done."""


async def chaos(stack: Stack, disturb: Disturbance, havoc: Havoc, stop: asyncio.Event) -> None:
    """Every 2-4 s SIGKILL a service process, each in turn in a shuffled order, so that every
    service dies at least once; disturb Kafka once, after the third kill; start again every
    process that is not running (supervision)."""
    rng = random.Random(7)
    turn: list[str] = []
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(2.0, 4.0))
        if stop.is_set():
            break
        if not turn:
            turn = sorted(stack.processes)
            rng.shuffle(turn)
        name = turn.pop()
        stack.processes[name].kill()
        havoc.kills.append(name)
        if len(havoc.kills) == 3 and not havoc.broker_restarted:
            await disturb(havoc)
        havoc.restarts += await asyncio.to_thread(supervise, stack)


def supervise(stack: Stack) -> int:
    """Start every service process that is not running; wait until each is healthy."""
    restarted = 0
    for process in stack.processes.values():
        if process.pid() is None:
            process.start()
            restarted += 1
    for process in stack.processes.values():
        process.wait_healthy(timeout=120)
    return restarted


def prices(hour: datetime) -> dict[str, Any]:
    """A catalogue in effect from `hour`, dear enough that a few seconds show in cents."""
    return {
        "currency": "EUR",
        "effective_from": hour.isoformat(),
        "flavor_hour": {"m1.tiny": "36"},
        "volume_gb_month": "2592",
        "egress_gb": "1",
        "public_ip_hour": "0",
    }


async def wait_active(api: Api, path: str) -> None:
    deadline = time.monotonic() + 60
    while (await api.call("GET", path))["status"] != "ACTIVE":
        assert time.monotonic() < deadline, f"{path} is not ACTIVE"
        await asyncio.sleep(0.2)


def virga_links(prefix: str) -> set[str]:
    return {name for name in links("") if name.startswith(prefix)}


async def settled_links(prefix: str, seconds: float = 30) -> set[str]:
    """The agent's interfaces once they stop changing (it converges every 0.2 s)."""
    deadline = time.monotonic() + seconds
    last = virga_links(prefix)
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = virga_links(prefix)
        if now == last:
            return now
        last = now
    return last


def gone(view: Any) -> bool:
    """Whether a GET answered 404: a problem body, whose `status` is the HTTP status."""
    return isinstance(view.get("status"), int)


async def converge(api: Api, ledger: Ledger, seconds: float = 240) -> list[str]:
    """Wait until every accepted request reached a final state; return what did not."""
    deadline = time.monotonic() + seconds
    while True:
        pending = []
        for iid, final in ledger.instances.items():
            view = await api.call("GET", f"/v1/instances/{iid}", expect=(200, 404))
            status = "DELETED" if gone(view) else view["status"]
            wanted = final or {"DELETED"}
            if status not in wanted:
                pending.append(f"instance {iid}: {status}, expected {sorted(wanted)}")
        for vid, size in ledger.volumes.items():
            view = await api.call("GET", f"/v1/volumes/{vid}", expect=(200, 404))
            if size is None:
                if not gone(view):
                    pending.append(f"volume {vid}: {view['status']}, expected deleted")
            elif view.get("status") != "available" or view.get("size_gb") != size:
                pending.append(f"volume {vid}: {view.get('status')} {view.get('size_gb')} GB")
        for port_id, alive in ledger.ports.items():
            view = await api.call("GET", f"/v1/ports/{port_id}", expect=(200, 404))
            if alive and (gone(view) or view["status"] != "ACTIVE"):
                pending.append(f"port {port_id}: {view.get('status')}, expected ACTIVE")
            if not alive and not gone(view):
                pending.append(f"port {port_id}: {view['status']}, expected deleted")
        if not pending or time.monotonic() > deadline:
            return pending
        await asyncio.sleep(1.0)


async def listed(api: Api, path: str) -> list[Any]:
    """Every item of a paged list."""
    items: list[Any] = []
    cursor = ""
    while True:
        page = await api.call("GET", f"{path}?limit=200{cursor}")
        items += page["items"]
        if not page.get("next"):
            return items
        cursor = f"&cursor={page['next']}"


async def run_and_check(
    stack: Stack,
    ceph_pool: RbdDriver,
    disturb: Disturbance,
    *,
    operations: int,
    seconds: float,
    prefix: str,
) -> Havoc:
    """The chaos run on `stack` (made by `chaos_stack` with `prefix`), `operations` spread
    over `seconds`, Kafka disturbed by `disturb`; then every check. What the driver did."""
    havoc = Havoc()
    stop = asyncio.Event()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        admin = Api(session, stack.gateway_url, stack.admin_token)
        tenant_id, token = await admin.create_tenant("chaos")
        tenant = admin.as_token(token)
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        await admin.call("PUT", "/v1/prices", prices(hour))
        network = await submit(tenant, "POST", "/v1/networks", {"name": "n", "cidr": "10.9.0.0/24"})
        await wait_active(tenant, f"/v1/networks/{network['id']}")
        driver = asyncio.create_task(chaos(stack, disturb, havoc, stop))
        try:
            on = Network(network["id"], tenant_id, stack.hosts[0].name)
            ledger = await clients(tenant, admin, operations, seconds, on)
        finally:
            stop.set()
            await driver
        await asyncio.to_thread(supervise, stack)
        not_final = await converge(tenant, ledger)
        until = datetime.now(UTC).replace(microsecond=0)
        window = {"from": hour.isoformat(), "to": until.isoformat()}
        billed = await tenant.call("GET", f"/v1/usage?{urlencode(window)}")
        ports = (await tenant.call("GET", f"/v1/ports?network_id={network['id']}&limit=100"))[
            "items"
        ]
        instances = [item["id"] for item in await listed(tenant, "/v1/instances")]

    print(
        f"chaos: {ledger.accepted} accepted, {ledger.refused} refused; "
        f"{len(havoc.kills)} kills ({', '.join(havoc.kills)}), {havoc.restarts} restarts; "
        f"{havoc.broker}"
    )
    assert havoc.broker_restarted, havoc
    assert len(havoc.kills) >= 3, havoc
    assert ledger.accepted >= operations // 2, ledger
    assert not_final == [], "\n".join(not_final)
    # No request accepted twice: the tenant has exactly the instances the API said it made.
    assert sorted(instances) == sorted(ledger.live_instances())
    addresses = [ip for port in ports for ip in port["ips"]]
    macs = [port["mac"] for port in ports]
    assert len(addresses) == len(set(addresses)), sorted(addresses)
    assert len(macs) == len(set(macs)), sorted(macs)
    assert len(ports) == len(ledger.live_ports())
    # Netlink holds exactly the live ports' taps (and veth peers) and the network's bridge and
    # VXLAN on the agent's host: nothing duplicated, nothing of a deleted port.
    plumbing = {names.bridge_name(network["id"], prefix), names.vxlan_name(network["id"], prefix)}
    taps = {names.tap_name(port_id, prefix) for port_id in ledger.live_ports()}
    peers = {names.veth_peer(tap) for tap in taps}
    assert await settled_links(prefix) == plumbing | taps | peers
    pool = await audit_namespace(stack.bootstrap, stack.namespace, ceph_pool, shared=True)
    assert pool.clean, pool
    settings = KafkaSettings(bootstrap_servers=stack.bootstrap, namespace=stack.namespace)
    assert await check(settings, datetime.now(UTC)) == []
    definition = service_definition("billing", stack.namespace)
    billing = await replay_state(settings, definition, END_OF_TIME)
    lines, currency = rate_window(billing, billed["tenant_id"], hour, until)
    assert billed["lines"] == [msgspec.to_builtins(line) for line in lines]
    assert billed["total"] == total(lines, currency)
    assert Decimal(billed["total"]) > 0
    return havoc
