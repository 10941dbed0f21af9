"""A gateway on the real broker with two tenants, each owning one resource of every type.

Resources come through the API where the gateway alone creates them, and from the owning
services' facts where another service has a say (a network becomes ACTIVE, an image's bytes
are imported): the projection holds them exactly as it would in a running cloud.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.integration.gateway.harness import ADMIN_TOKEN, Gateway, Reply

from virga_eventlog import EventWriter, KafkaSettings, ensure_topics, event_topic, virga_topics
from virga_events import Event, new_event
from virga_events.catalog.compute import HostRegistered
from virga_events.catalog.l3 import ExternalNetworkCreated, FloatingIpAllocated, RouterCreated
from virga_events.catalog.network import AllocationPool, NetworkCreated, security_group_rule_id
from virga_events.catalog.storage import ImageImported, ImageImportRequested
from virga_gateway.routes import ROUTES
from virga_gateway.routing import Route

MAX_BODY_BYTES = 64 * 1024
"""The hostile gateway's body limit: small, so 413s cost little to provoke."""

OWNED = (
    "instances",
    "server-groups",
    "security-groups",
    "volumes",
    "networks",
    "images",
    "ports",
    "keypairs",
    "floating-ips",
    "routers",
)
"""The resource types each test tenant owns one of (`Tenant.owns`)."""

SHARED = ("external-networks",)
"""Resource types every tenant sees (an admin's): no tenant owns one, none is another's."""

NEVER_USED = "0" * 8
"""An id no resource has."""

COLLECTION = re.compile(r"^/v1/(?P<collection>[a-z-]+)/\{(?:id|name)\}")

PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPM07d560gkPwypXVpoPoOQqGWcLx9E/PnBsPF5uG21p hostile@test"
)
"""The public key of both tenants' keypairs (made by ssh-keygen; its private key was thrown
away): the same key may be imported by two tenants."""


def collection_of(route: Route) -> str | None:
    """`instances` for /v1/instances/{id}/..., `keypairs` for /v1/keypairs/{name}, None for
    routes without a resource id."""
    found = COLLECTION.match(route.path)
    return found["collection"] if found else None


@dataclass
class Tenant:
    id: str
    token: str
    owns: dict[str, str] = field(default_factory=dict)
    """Collection (`instances`, `volumes`...) -> id of a resource of this tenant."""


@dataclass
class Cloud:
    gateway: Gateway
    a: Tenant
    b: Tenant
    host: str = "h1"
    external: str = ""
    """The admin's external network (every tenant sees it)."""

    async def call(self, method: str, path: str, token: str | None, **kw: Any) -> Reply:
        return await self.gateway.call(method, path, token=token, **kw)

    def path(self, route: Route, tenant: Tenant) -> str:
        """`route`'s path with `tenant`'s resources (and the test host) as parameters."""
        collection = collection_of(route)
        values = {
            "id": tenant.owns.get(collection or "", tenant.id),
            "volume_id": tenant.owns["volumes"],
            "snapshot_id": NEVER_USED,  # A's volume in the path is what B must not reach
            "name": self.host,
            "period": "2026-11",
            # The tenant's group was made with one rule, whose id derives from its position.
            "rule_id": security_group_rule_id(tenant.owns["security-groups"], 0),
            "network_id": tenant.owns["networks"],
        }
        if route.path.startswith("/v1/tenants/"):
            values["id"] = tenant.id
        if collection in SHARED:
            values["id"] = self.external
        if route.path.startswith("/v1/tokens/"):
            values["id"] = tenant.owns["tokens"]
        if route.path.startswith("/v1/keypairs/"):
            values["name"] = tenant.owns["keypairs"]
        return route.path.format(**values)


async def _created(gateway: Gateway, token: str, path: str, body: dict[str, Any]) -> str:
    reply = await gateway.call("POST", path, token=token, json=body)
    assert reply.status in (201, 202), (path, reply.status, reply.body)
    created: str = reply.body["id"]
    return created


async def _tenant(gateway: Gateway, name: str) -> Tenant:
    tenant_id, token = await gateway.tenant(name)
    issued = await gateway.call("POST", f"/v1/tenants/{tenant_id}/tokens")
    tenant = Tenant(tenant_id, token)
    tenant.owns["tokens"] = issued.body["id"]
    return tenant


EXTERNAL_POOL = (AllocationPool(start="203.0.113.10", end="203.0.113.20"),)


async def _external_network(gateway: Gateway, writer: EventWriter) -> str:
    """The admin's external network, as the controller made it."""
    body = {
        "name": "public",
        "cidr": "203.0.113.0/24",
        "gateway_ip": "203.0.113.1",
        "allocation_pools": [{"start": "203.0.113.10", "end": "203.0.113.20"}],
        "host_interface": "br-ex",
    }
    external = await _created(gateway, ADMIN_TOKEN, "/v1/external-networks", body)
    created = ExternalNetworkCreated(
        name="public",
        cidr="203.0.113.0/24",
        gateway_ip="203.0.113.1",
        allocation_pools=EXTERNAL_POOL,
        host_interface="br-ex",
    )
    async with writer.transaction() as txn:
        envelope = new_event(created, aggregate_id=external, tenant_id=None, producer="network")
        await txn.append(event_topic("network", gateway.namespace), envelope)
    return external


async def _own_everything(
    gateway: Gateway, tenant: Tenant, writer: EventWriter, external: str, index: int
) -> None:
    owns, token, ns = tenant.owns, tenant.token, gateway.namespace
    owns["instances"] = (await gateway.instance(token, "vm"))["id"]
    owns["server-groups"] = await _created(
        gateway, token, "/v1/server-groups", {"name": "g", "policy": "anti-affinity"}
    )
    group = {"name": "sg", "rules": [{"direction": "ingress", "protocol": "tcp", "port_min": 80}]}
    owns["security-groups"] = await _created(gateway, token, "/v1/security-groups", group)
    owns["volumes"] = await _created(gateway, token, "/v1/volumes", {"name": "v", "size_gb": 1})
    # Names are per tenant: each tenant's own, so that one's never names the other's.
    keypair = {"name": f"kp-{uuid.uuid4().hex[:12]}", "public_key": PUBLIC_KEY}
    imported = await gateway.call("POST", "/v1/keypairs", token=token, json=keypair)
    assert imported.status == 201, imported.body
    owns["keypairs"] = keypair["name"]
    network = owns["networks"] = await _created(
        gateway, token, "/v1/networks", {"name": "n", "cidr": "10.9.0.0/24"}
    )
    image = owns["images"] = str(uuid.uuid4())
    on_external = {"external_network_id": external}
    fip = owns["floating-ips"] = await _created(gateway, token, "/v1/floating-ips", on_external)
    router = owns["routers"] = await _created(
        gateway, token, "/v1/routers", {"name": "r", **on_external}
    )
    facts: list[tuple[str, str, Event]] = [
        (
            "network",
            fip,
            FloatingIpAllocated(external_network_id=external, ip=f"203.0.113.{10 + 2 * index}"),
        ),
        (
            "network",
            router,
            RouterCreated(
                name="r", external_network_id=external, external_ip=f"203.0.113.{11 + 2 * index}"
            ),
        ),
        (
            "network",
            network,
            NetworkCreated(
                name="n",
                cidr="10.9.0.0/24",
                vni=1000,
                gateway_ip="10.9.0.1",
                allocation_pools=(AllocationPool(start="10.9.0.2", end="10.9.0.254"),),
            ),
        ),
        (
            "storage",  # the gateway's own topic in a cloud; it folds the same from any
            image,
            ImageImportRequested(name="img", disk_format="raw", visibility="private"),
        ),
        (
            "storage",
            image,
            ImageImported(
                name="img",
                size_bytes=1 << 20,
                sha256=hashlib.sha256(b"").hexdigest(),
                visibility="private",
            ),
        ),
    ]
    async with writer.transaction() as txn:
        for service, aggregate, fact in facts:
            envelope = new_event(
                fact, aggregate_id=aggregate, tenant_id=tenant.id, producer=service
            )
            await txn.append(event_topic(service, ns), envelope)


async def _until_seen(gateway: Gateway, tenant: Tenant, seconds: float = 20.0) -> None:
    """Wait for the other services' facts to reach the projection: network ACTIVE, image."""
    async with asyncio.timeout(seconds):
        while True:
            network = await gateway.call(
                "GET", f"/v1/networks/{tenant.owns['networks']}", token=tenant.token
            )
            image = await gateway.call(
                "GET", f"/v1/images/{tenant.owns['images']}", token=tenant.token
            )
            if network.body.get("status") == "ACTIVE" and image.status == 200:
                return
            await asyncio.sleep(0.05)


async def _until_external(gateway: Gateway, external: str, seconds: float = 20.0) -> None:
    async with asyncio.timeout(seconds):
        while True:
            path = f"/v1/external-networks/{external}"
            reply = await gateway.call("GET", path, token=ADMIN_TOKEN)
            if reply.body.get("status") == "ACTIVE":
                return
            await asyncio.sleep(0.05)


async def cloud_on(bootstrap: str) -> Cloud:
    """A started gateway, two tenants and their resources; close with `cloud.gateway.close()`."""
    namespace = f"hostile{uuid.uuid4().hex[:8]}"
    settings = KafkaSettings(bootstrap_servers=bootstrap, namespace=namespace)
    await ensure_topics(settings, virga_topics(partitions=3, namespace=namespace))
    # A storage service that is not there: an upload gets as far as the gateway's own checks.
    gateway = await Gateway.create(
        bootstrap, namespace, max_body_bytes=MAX_BODY_BYTES, storage_url="http://127.0.0.1:9"
    )
    try:
        a = await _tenant(gateway, "tenant-a")
        b = await _tenant(gateway, "tenant-b")
        async with EventWriter(settings, transactional_id=f"{namespace}-facts") as writer:
            async with writer.transaction() as txn:
                host = HostRegistered(rack="r1", zone="az1", vcpus=8, ram_mb=8192, disk_gb=100)
                await txn.append(
                    event_topic("compute", namespace),
                    new_event(host, aggregate_id="h1", tenant_id=None, producer="compute@h1"),
                )
            external = await _external_network(gateway, writer)
            await _until_external(gateway, external)
            for index, tenant in enumerate((a, b)):
                await _own_everything(gateway, tenant, writer, external, index)
        for tenant in (a, b):
            await _until_seen(gateway, tenant)
            port = await _created(
                gateway, tenant.token, "/v1/ports", {"network_id": tenant.owns["networks"]}
            )
            tenant.owns["ports"] = port
            assert set(tenant.owns) == {*OWNED, "tokens"}
        return Cloud(gateway, a, b, external=external)
    except BaseException:
        await gateway.close()
        raise


__all__ = [
    "ADMIN_TOKEN",
    "MAX_BODY_BYTES",
    "NEVER_USED",
    "OWNED",
    "PUBLIC_KEY",
    "ROUTES",
    "SHARED",
    "Cloud",
    "Tenant",
    "cloud_on",
]
