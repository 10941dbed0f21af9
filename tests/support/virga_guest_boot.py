"""Debian 12's cloud image booted through Virga's API, timed from `POST /v1/instances` to the
first SSH login: the control-plane side of `bench/guest_boot_bench.py`.

The stack, upload, flavor, keypair and tenant seat are those of the tenant-login e2e test
(`tests/e2e/test_tenant_login.py`), imported from it: one copy. One guest at a time: each boot
deletes its instance before returning.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from tests.e2e.test_tenant_login import (
    FLAVOR,
    FLAVOR_NAME,
    HOST,
    URI,
    Seat,
    Tenant,
    new_tenant,
    seat,
    ssh,
    upload,
    virga_links,
)
from tests.support.api import Api, until
from tests.support.netns import namespaces, sh, unique
from tests.support.stack import HostSpec, Stack, on_ceph
from virga_devstack.ceph import CephCluster

BOOT_SECONDS = 600.0
PREFIX = "vbv"
"""The bench's network agent names its interfaces with it: not the e2e test's `vl4`, whose
clean-up deletes every link of that prefix (a test running beside the bench took its VXLAN)."""
MILESTONES = (
    ("requested", "InstanceRequested"),
    ("scheduled", "InstanceScheduled"),
    ("volume created", "VolumeCreated"),
    ("port bound", "PortBound"),
    ("started", "InstanceStarted"),
)
"""The instance's events that mark the control plane's steps, by the name printed for them."""


@dataclass(frozen=True)
class VirgaBoot:
    first_ssh: float
    """Seconds from the POST to the first successful SSH login."""
    cloud_init_done: float
    milestones: tuple[tuple[str, float], ...]
    """(milestone, seconds after the POST), in the order they happened, first SSH last."""

    @property
    def started(self) -> float:
        return dict(self.milestones)["started"]

    def phases(self) -> dict[str, float]:
        """`a→b`: seconds between consecutive milestones, from the POST."""
        marks = (("POST", 0.0), *self.milestones)
        return {f"{a}→{b}": t - s for (a, s), (b, t) in itertools.pairwise(marks)}

    def phase_names(self) -> list[str]:
        return list(self.phases())

    def phase(self, name: str) -> float:
        return self.phases().get(name, float("nan"))

    def describe(self) -> str:
        steps = ", ".join(f"{name} {seconds:.2f}" for name, seconds in self.milestones)
        return (
            f"POST→first SSH {self.first_ssh:.1f} s, cloud-init done {self.cloud_init_done:.1f} s"
            f" (s after POST: {steps})"
        )


def milestones(events: list[dict[str, Any]], posted: float) -> list[tuple[str, float]]:
    """Each milestone's first event, in seconds after `posted` (wall clock), by time."""
    found: list[tuple[str, float]] = []
    for name, kind in MILESTONES:
        times = [
            datetime.fromisoformat(event["occurred_at"]).timestamp()
            for event in events
            if event["type"] == kind
        ]
        if times:
            found.append((name, min(times) - posted))
    return sorted(found, key=lambda mark: mark[1])


class VirgaBooter:
    def __init__(self, tenant: Tenant, place: Seat, image_id: str) -> None:
        self.tenant, self.place, self.image_id = tenant, place, image_id

    async def _first_login(self, ip: str, started: float) -> float:
        """As `stock_guest.Guest.wait_for_ssh`: a try every second (5 s connect timeout)."""
        deadline = started + BOOT_SECONDS
        while True:
            login = await asyncio.to_thread(ssh, self.tenant, self.place.namespace, ip, "true", 30)
            if login.returncode == 0:
                return time.monotonic() - started
            if time.monotonic() > deadline:
                raise AssertionError(f"no login to {ip}: {login.stderr}")
            await asyncio.sleep(1.0)

    async def boot_once(self, name: str, user_data: bytes) -> VirgaBoot:
        api = self.tenant.api
        posted, started = time.time(), time.monotonic()
        instance = await api.create_instance(
            name,
            flavor=FLAVOR_NAME,
            image=self.image_id,
            network_id=self.place.network["id"],
            key_name="mine",
            user_data=base64.b64encode(user_data).decode(),
            config_drive=True,
        )
        path = f"/v1/instances/{instance['id']}"
        try:
            view = await until(
                api, path, lambda v: v["status"] in {"RUNNING", "ERROR"}, BOOT_SECONDS
            )
            if view["status"] != "RUNNING":
                raise AssertionError(f"the instance did not start: {view}")
            [address] = view["addresses"]
            first_ssh = await self._first_login(address["ip"], started)
            ssh_at = posted + first_ssh
            done = await asyncio.to_thread(
                ssh, self.tenant, self.place.namespace, address["ip"],
                "cloud-init status --wait", BOOT_SECONDS,
            )  # fmt: skip
            if "status: done" not in done.stdout:
                raise AssertionError(f"cloud-init did not finish: {done.stdout}{done.stderr}")
            cloud_init_done = time.monotonic() - started
            events = await api.call("GET", f"{path}/events")
        finally:
            await api.call("DELETE", path)
            await until(api, path, lambda v: v is None or v["status"] == "DELETED")
        marks = milestones(events, posted)
        return VirgaBoot(first_ssh, cloud_init_done, (*marks, ("first SSH", ssh_at - posted)))


@asynccontextmanager
async def virga_booter(
    bootstrap: str, cluster: CephCluster, image: Path, work: Path, log: Callable[[str], None]
) -> AsyncIterator[VirgaBooter]:
    """A stack on `cluster` with the image uploaded as `debian-12`, the flavor, a tenant with a
    keypair and a seat on its network; everything deleted again on exit."""
    stack = Stack(
        bootstrap,
        work / "stack",
        (HostSpec(HOST, "rack-1", libvirt_uri=URI),),
        **on_ceph(cluster),
        network_agent_prefix=PREFIX,
        network_agent_edge=True,
    )
    try:
        with stack.running():
            timeout = aiohttp.ClientTimeout(total=600)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                admin = Api(session, stack.gateway_url, stack.admin_token)
                uploaded = await upload(admin, image)
                log(f"stack up, image uploaded: {uploaded['id']}")
                await admin.call("POST", "/v1/flavors", FLAVOR)
                tenant = await new_tenant(admin, work, "bench")
                with namespaces([unique(PREFIX)]) as [namespace]:
                    place = await seat(admin, tenant, "bench", "10.78.0.0/24", namespace, PREFIX)
                    try:
                        yield VirgaBooter(tenant, place, uploaded["id"])
                    finally:
                        await _unseat(tenant, place)
                        await _delete_image(admin, uploaded["id"], log)
    finally:
        for name in virga_links(PREFIX):
            sh("ip", "link", "del", name, check=False)


async def _unseat(tenant: Tenant, place: Seat) -> None:
    await tenant.api.call("DELETE", f"/v1/ports/{place.port['id']}")
    await until(tenant.api, f"/v1/ports/{place.port['id']}", lambda v: v is None)
    await tenant.api.call("DELETE", f"/v1/networks/{place.network['id']}")
    await until(tenant.api, f"/v1/networks/{place.network['id']}", lambda v: v is None)


async def _delete_image(admin: Api, image_id: str, log: Callable[[str], None]) -> None:
    """Delete the image once no volume is a clone of it (409 until the storage service has
    deleted the last instance's volume)."""
    path = f"/v1/images/{image_id}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        answer = await admin.call("DELETE", path, expect=(202, 404, 409))
        if not (isinstance(answer, dict) and answer.get("status") == 409):
            try:
                await until(admin, path, lambda v: v is None or v["status"] == "deleted", 120)
            except TimeoutError:
                log(f"image {image_id} not gone yet")
            return
        await asyncio.sleep(1.0)
    log(f"image {image_id} left: its volumes were not deleted")
