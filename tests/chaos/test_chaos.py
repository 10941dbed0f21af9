"""Chaos: mixed operations through the API while service processes are SIGKILLed at random and
the Kafka broker is restarted once.

Every service runs as its own OS process, supervised as in production: a process that dies
(killed here, or ended by the broker's restart) is started again. Clients retry what failed
in transit with the same Idempotency-Key, so each request is accepted at most once. Afterwards
every accepted request must have reached a final state that its last accepted action explains,
the Ceph pool must hold exactly what the log accounts for, no address or MAC may be handed out
twice, the cross-service invariants of `virga audit check` must hold, and the tenant's usage
as the API rates it must equal a re-rating of the raw events (`virga audit rerate`'s code).

`VIRGA_CHAOS_OPERATIONS` (200) sets the number of operations, `VIRGA_CHAOS_SECONDS` (60) the
time they are spread over, `VIRGA_CHAOS_KAFKA_PORT` (19250)
the port of this test's own broker (restarting the session's broker would disturb other tests).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp
import msgspec
import pytest
from tests.support.api import Api, ApiError
from tests.support.netns import links, sh
from tests.support.pool import audit_namespace
from tests.support.stack import HostSpec, Stack, on_ceph

from virga_audit import check
from virga_audit.replay import replay_state, service_definition
from virga_audit.rerate import END_OF_TIME
from virga_devstack.ceph import CephCluster
from virga_devstack.kafka import KafkaBroker
from virga_eventlog import KafkaSettings
from virga_network.agent.core import names
from virga_rating.rating import rate_window, total
from virga_storage.drivers.rbd import RbdDriver

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.timeout(900)]

OPERATIONS = int(os.environ.get("VIRGA_CHAOS_OPERATIONS", "200"))
SECONDS = float(os.environ.get("VIRGA_CHAOS_SECONDS", "60"))
KAFKA_PORT = int(os.environ.get("VIRGA_CHAOS_KAFKA_PORT", "19250"))
HOSTS = (HostSpec("chaos-a", "rack-1"), HostSpec("chaos-b", "rack-2"))
PREFIX = "vc8"
"""The network agent of chaos-a names its bridge, VXLAN and taps with it (root namespace)."""
TRANSIENT = {500, 502, 503, 504}
FINAL_INSTANCE = {"RUNNING", "STOPPED", "ERROR"}


@pytest.fixture(scope="module")
def broker() -> Iterator[KafkaBroker]:
    broker = KafkaBroker(KAFKA_PORT)
    broker.start(fresh=True)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def stack(
    broker: KafkaBroker, ceph_cluster: CephCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    stack = Stack(
        broker.bootstrap_servers,
        tmp_path_factory.mktemp("chaos"),
        HOSTS,
        **on_ceph(ceph_cluster),
        billing=True,
        network_agent_prefix=PREFIX,
    )
    try:
        with stack.running():
            yield stack
    finally:
        for name in virga_links():  # the agent leaves its plumbing when stopped; remove it
            sh("ip", "link", "del", name, check=False)


class Refused(Exception):
    """The API refused the request (4xx): it was not accepted, and nothing must follow."""


async def submit(api: Api, method: str, path: str, body: Any = None) -> Any:
    """The request, retried through outages with one Idempotency-Key until it is answered."""
    headers = {"Idempotency-Key": str(uuid.uuid4())} if method == "POST" else None
    deadline = time.monotonic() + 180
    while True:
        try:
            return await api.call(method, path, body, expect=(200, 201, 202, 204), headers=headers)
        except ApiError as error:
            if error.status not in TRANSIENT:
                raise Refused(f"{method} {path}: {error.status} {error.body}") from None
        except (TimeoutError, aiohttp.ClientError):
            pass  # the gateway is down or restarting
        if time.monotonic() > deadline:
            raise TimeoutError(f"{method} {path} was never answered")
        await asyncio.sleep(0.3)


@dataclass
class Ledger:
    """What the API accepted, and so what must be true at the end."""

    instances: dict[str, set[str]] = field(default_factory=dict)
    """Instance id → the statuses its last accepted request may end in (empty: deleted)."""
    volumes: dict[str, int | None] = field(default_factory=dict)
    """Volume id → its last accepted size (None: deleted)."""
    ports: dict[str, bool] = field(default_factory=dict)
    """Port id → whether it should exist."""
    accepted: int = 0
    refused: int = 0

    def live_instances(self) -> list[str]:
        return [i for i, final in self.instances.items() if final]

    def live_volumes(self) -> list[str]:
        return [v for v, size in self.volumes.items() if size is not None]

    def live_ports(self) -> list[str]:
        return [p for p, alive in self.ports.items() if alive]


async def operate(
    api: Api, admin: Api, ledger: Ledger, rng: random.Random, network_id: str, tenant_id: str
) -> None:
    """One random operation of the mix."""
    roll = rng.random()
    instances, volumes = ledger.live_instances(), ledger.live_volumes()
    ports = ledger.live_ports()
    try:
        if roll < 0.3 or not instances:
            created = await submit(api, "POST", "/v1/instances", {"name": "c", "flavor": "m1.tiny"})
            ledger.instances[created["id"]] = {"RUNNING", "ERROR"}
        elif roll < 0.4:
            iid = rng.choice(instances)
            await submit(api, "POST", f"/v1/instances/{iid}/actions", {"action": "stop"})
            ledger.instances[iid] = {"STOPPED", "ERROR"}
        elif roll < 0.5:
            iid = rng.choice(instances)
            await submit(api, "POST", f"/v1/instances/{iid}/actions", {"action": "start"})
            ledger.instances[iid] = {"RUNNING", "ERROR"}
        elif roll < 0.6:
            iid = rng.choice(instances)
            await submit(api, "DELETE", f"/v1/instances/{iid}")
            ledger.instances[iid] = set()
        elif roll < 0.72 or not volumes:
            created = await submit(api, "POST", "/v1/volumes", {"name": "v", "size_gb": 1})
            ledger.volumes[created["id"]] = 1
        elif roll < 0.8:
            vid = rng.choice(volumes)
            size = (ledger.volumes[vid] or 1) + 1
            body = {"action": "extend", "size_gb": size}
            await submit(api, "POST", f"/v1/volumes/{vid}/actions", body)
            ledger.volumes[vid] = size
        elif roll < 0.86:
            vid = rng.choice(volumes)
            await submit(api, "DELETE", f"/v1/volumes/{vid}")
            ledger.volumes[vid] = None
        elif roll < 0.96 or not ports:
            # Bound on chaos-a (an admin chooses the host), so its agent plugs it in.
            body = {"network_id": network_id, "host": HOSTS[0].name, "tenant_id": tenant_id}
            created = await submit(admin, "POST", "/v1/ports", body)
            ledger.ports[created["id"]] = True
        else:
            port_id = rng.choice(ports)
            await submit(api, "DELETE", f"/v1/ports/{port_id}")
            ledger.ports[port_id] = False
    except Refused:
        ledger.refused += 1  # e.g. stop of an instance still building: 409, nothing accepted
    else:
        ledger.accepted += 1


async def clients(
    api: Api,
    admin: Api,
    operations: int,
    seconds: float,
    network_id: str,
    tenant_id: str,
    workers: int = 6,
) -> Ledger:
    """`operations` spread evenly over `seconds` and over `workers` concurrent clients, each
    acting on its own resources only, so that the order in which its requests were accepted
    is the order it sent them."""
    remaining = iter(range(operations))
    began = time.monotonic()

    async def worker(seed: int) -> Ledger:
        rng, ledger = random.Random(seed), Ledger()
        for i in remaining:
            await asyncio.sleep(max(0.0, began + i * seconds / operations - time.monotonic()))
            await operate(api, admin, ledger, rng, network_id, tenant_id)
        return ledger

    total = Ledger()
    for ledger in await asyncio.gather(*(worker(seed) for seed in range(workers))):
        total.instances |= ledger.instances
        total.volumes |= ledger.volumes
        total.ports |= ledger.ports
        total.accepted += ledger.accepted
        total.refused += ledger.refused
    return total


@dataclass
class Havoc:
    """What the chaos driver did."""

    kills: list[str] = field(default_factory=list)
    restarts: int = 0
    broker_restarted: bool = False


async def chaos(stack: Stack, broker: KafkaBroker, havoc: Havoc, stop: asyncio.Event) -> None:
    """Every 2-4 s SIGKILL a service process, each in turn in a shuffled order, so that every
    service dies at least once; restart the broker once, after the third kill; start again
    every process that is not running (supervision)."""
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
            await asyncio.to_thread(broker.stop)
            await asyncio.to_thread(broker.start)
            havoc.broker_restarted = True
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


def virga_links() -> set[str]:
    return {name for name in links("") if name.startswith(PREFIX)}


async def settled_links(seconds: float = 30) -> set[str]:
    """The agent's interfaces once they stop changing (it converges every 0.2 s)."""
    deadline = time.monotonic() + seconds
    last = virga_links()
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = virga_links()
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


async def test_every_accepted_request_survives_kills_and_a_broker_restart(
    stack: Stack, broker: KafkaBroker, ceph_pool: RbdDriver
) -> None:
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
        driver = asyncio.create_task(chaos(stack, broker, havoc, stop))
        try:
            ledger = await clients(tenant, admin, OPERATIONS, SECONDS, network["id"], tenant_id)
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

    print(
        f"chaos: {ledger.accepted} accepted, {ledger.refused} refused; "
        f"{len(havoc.kills)} kills ({', '.join(havoc.kills)}), {havoc.restarts} restarts"
    )
    assert havoc.broker_restarted, havoc
    assert len(havoc.kills) >= 3, havoc
    assert ledger.accepted >= OPERATIONS // 2, ledger
    assert not_final == [], "\n".join(not_final)
    addresses = [ip for port in ports for ip in port["ips"]]
    macs = [port["mac"] for port in ports]
    assert len(addresses) == len(set(addresses)), sorted(addresses)
    assert len(macs) == len(set(macs)), sorted(macs)
    assert len(ports) == len(ledger.live_ports())
    # Netlink holds exactly the live ports' taps (and veth peers) and the network's bridge and
    # VXLAN on chaos-a: nothing duplicated, nothing of a deleted port.
    plumbing = {names.bridge_name(network["id"], PREFIX), names.vxlan_name(network["id"], PREFIX)}
    taps = {names.tap_name(port_id, PREFIX) for port_id in ledger.live_ports()}
    peers = {names.veth_peer(tap) for tap in taps}
    assert await settled_links() == plumbing | taps | peers
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
