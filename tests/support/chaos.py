"""The chaos tests' clients: a random mix of keyed requests through the API, retried through
outages with one Idempotency-Key each, and the ledger of what the API accepted (so what must
be true once the chaos ends). Used by every chaos test (tests/chaos/)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.support.api import Api, ApiError

TRANSIENT = {500, 502, 503, 504}


@dataclass(frozen=True)
class Network:
    """The tenant's network the clients' ports go on, and the host that binds them."""

    id: str
    tenant_id: str
    host: str
    """The host whose network agent runs (an admin binds ports there)."""


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
    api: Api,
    admin: Api,
    ledger: Ledger,
    rng: random.Random,
    network: Network,
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
            # Bound on the agent's host (an admin chooses the host), so its agent plugs it in.
            body = {"network_id": network.id, "host": network.host, "tenant_id": network.tenant_id}
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
    network: Network,
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
            await operate(api, admin, ledger, rng, network)
        return ledger

    total = Ledger()
    for ledger in await asyncio.gather(*(worker(seed) for seed in range(workers))):
        total.instances |= ledger.instances
        total.volumes |= ledger.volumes
        total.ports |= ledger.ports
        total.accepted += ledger.accepted
        total.refused += ledger.refused
    return total
