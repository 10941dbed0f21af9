"""One Kafka identity per agent host, and one live agent per host name (issue #13, part 3).

On the secure broker: each host added by the operator gets users ``compute-<host>`` and
``network-<host>`` that may open exactly their own transactional ids and write only their own
snapshot topics; a compute agent started with the host name of a live one refuses to start
before it does anything, and a crashed agent's successor starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError, TransactionalIdAuthorizationFailed
from tests.support.ports import free_port

from virga_devstack.kafka_security import ADMIN, SecureKafkaBroker
from virga_eventlog import EventWriter, KafkaSettings, LogReader, event_topic, snapshot_topic
from virga_eventlog.acls import AUDITOR, host_acls
from virga_eventlog.hosts import host_users
from virga_runtime.lease import HostLease, HostLeaseHeld, Lease

pytestmark = pytest.mark.kafka


@pytest.fixture
async def namespace(secure_broker: SecureKafkaBroker) -> str:
    """A provisioned namespace with agent hosts h1 and h2 added."""
    name = f"host{uuid.uuid4().hex[:8]}"
    await secure_broker.provision(name)
    for host in ("h1", "h2"):
        await secure_broker.add_host(host, name)
    return name


async def opens(settings: KafkaSettings, transactional_id: str) -> None:
    """Open `transactional_id` (InitProducerId) and commit one empty transaction with it."""
    writer = EventWriter(settings, transactional_id=transactional_id)
    try:
        await writer.start()
        async with writer.transaction():
            pass
    finally:
        await writer.stop()


async def test_a_hosts_agents_open_only_their_own_transactional_ids(
    secure_broker: SecureKafkaBroker, namespace: str
) -> None:
    compute_h1 = secure_broker.settings("compute-h1", namespace)
    network_h1 = secure_broker.settings("network-h1", namespace)
    await opens(compute_h1, f"{namespace}-compute-h1")
    await opens(network_h1, f"{namespace}-network-h1")
    refused = [
        (compute_h1, f"{namespace}-compute-h2"),  # writing as h2 would fence h2's agent
        (network_h1, f"{namespace}-network-h2"),
        (network_h1, f"{namespace}-network"),  # the network controller's
        (compute_h1, f"{namespace}-network"),
        (compute_h1, f"{namespace}-compute"),
        (compute_h1, f"{namespace}-compute-h1x"),  # literal, not a prefix
    ]
    for settings, transactional_id in refused:
        with pytest.raises(TransactionalIdAuthorizationFailed):
            await opens(settings, transactional_id)


async def test_no_host_can_plant_a_snapshot_another_host_restores(
    secure_broker: SecureKafkaBroker, namespace: str
) -> None:
    """h2's agent restores from `<ns>.snapshots.compute.h2`, which only `compute-h2` writes."""
    compute_h1 = secure_broker.settings("compute-h1", namespace)
    producer = AIOKafkaProducer(**compute_h1.client_kwargs(), acks="all")
    await producer.start()
    try:
        for topic in (
            snapshot_topic("compute", namespace, "h2"),
            snapshot_topic("compute", namespace),  # the old shared one: no one's now
            snapshot_topic("network", namespace, "h2"),
            snapshot_topic("network", namespace),  # the controller's
        ):
            with pytest.raises(TopicAuthorizationFailedError):
                await producer.send_and_wait(topic, b"forged", key=b"compute@h2/manifest")
    finally:
        await producer.stop()
    writer = EventWriter(
        secure_broker.settings("compute-h2", namespace), transactional_id=f"{namespace}-compute-h2"
    )
    async with writer, writer.transaction() as txn:
        await txn.append_raw(snapshot_topic("compute", namespace, "h2"), b"k", b"own")


def test_an_operator_adds_a_host_from_the_command_line(
    secure_broker: SecureKafkaBroker, tmp_path: Path
) -> None:
    namespace = f"ops{uuid.uuid4().hex[:8]}"
    asyncio.run(secure_broker.provision(namespace))
    env = {**os.environ, **secure_broker.environment(ADMIN), "VIRGA_NAMESPACE": namespace}
    credentials = tmp_path / "hv-7"
    command = [sys.executable, "-m", "virga_eventlog.provision", "--host", "hv-7"]
    done = subprocess.run(
        [*command, "--credentials-dir", str(credentials)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    acls = len(host_acls("hv-7", namespace))
    assert done.stdout.strip() == (
        f"host hv-7 in namespace {namespace}: users compute-hv-7, network-hv-7, "
        f"4 topics created, {acls} ACLs in force"
    )
    for user in host_users("hv-7"):
        assert (credentials / f"{user}.password").stat().st_mode & 0o077 == 0
    password = (credentials / "compute-hv-7.password").read_text().strip()
    settings = secure_broker.settings(ADMIN, namespace).as_user("compute-hv-7", password)
    asyncio.run(opens(settings, f"{namespace}-compute-hv-7"))
    with pytest.raises(TransactionalIdAuthorizationFailed):
        asyncio.run(opens(settings, f"{namespace}-compute-h1"))
    bad = subprocess.run(
        [*command[:-1], "bad/name", "--credentials-dir", str(credentials)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "host name 'bad/name'" in bad.stderr


# -- one live agent per host --------------------------------------------------------------

LEASE_SECONDS = 4.0


class Agent:
    """A compute agent process of host `host`, as user ``compute-<host>``."""

    def __init__(self, broker: SecureKafkaBroker, namespace: str, host: str, logs: Path) -> None:
        self.port = free_port()
        self.log = logs / f"agent-{self.port}.log"
        env = {
            **os.environ,
            **broker.environment(f"compute-{host}"),
            "VIRGA_NAMESPACE": namespace,
            "VIRGA_HOST": host,
            "VIRGA_LIBVIRT_URI": "memory://",
            "VIRGA_HEARTBEAT_SECONDS": "0.5",
            "VIRGA_HOST_LEASE_SECONDS": str(LEASE_SECONDS),
            "VIRGA_HTTP_PORT": str(self.port),
            "VIRGA_LOG_FORMAT": "json",
        }
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "virga_compute"], env=env, stdout=out, stderr=out
            )

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def wait_ready(self, seconds: float) -> float:
        began = time.monotonic()
        while not self.ready():
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() - began < seconds, self.log.read_text()
            time.sleep(0.1)
        return time.monotonic() - began

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[list[Agent]]:
    started: list[Agent] = []
    yield started
    for agent in started:
        agent.stop()


async def heartbeats(broker: SecureKafkaBroker, namespace: str) -> int:
    """HostHeartbeat events committed on the compute topics so far (read as the auditor)."""
    settings = broker.settings(AUDITOR, namespace)
    compute = event_topic("compute", namespace)
    async with LogReader(settings, [compute], client_id="beats", families=[compute]) as r:
        ends = await r.end_offsets()
        count = 0
        async for batch in r.read_range({}, ends):
            count += sum(b"HostHeartbeat" in (record.value or b"") for record in batch)
        return count


def test_a_second_agent_of_a_live_host_refuses_to_start_and_a_crashed_ones_successor_starts(
    secure_broker: SecureKafkaBroker, namespace: str, agents: list[Agent], tmp_path: Path
) -> None:
    first = Agent(secure_broker, namespace, "h1", tmp_path)
    agents.append(first)
    first.wait_ready(60)

    second = Agent(secure_broker, namespace, "h1", tmp_path)
    agents.append(second)
    code = second.process.wait(timeout=LEASE_SECONDS + 30)
    output = second.log.read_text()
    assert code != 0, output
    assert "compute agent of host h1: compute@h1 already has a live agent" in output
    assert "refusing to start" in output
    # It refused before opening its producer: nothing rebuilt, decided or fenced.
    assert '"rebuilt"' not in output
    assert "Traceback" not in output
    before = asyncio.run(heartbeats(secure_broker, namespace))
    time.sleep(2)  # four heartbeats: a fenced first agent would have died at its next one
    assert first.process.poll() is None, first.log.read_text()
    assert first.ready()
    assert asyncio.run(heartbeats(secure_broker, namespace)) > before

    # A crash leaves the lease behind; the next agent of h1 takes it over and starts.
    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    third = Agent(secure_broker, namespace, "h1", tmp_path)
    agents.append(third)
    third.wait_ready(LEASE_SECONDS + 60)
    assert "host_lease_taken_over" in third.log.read_text()

    # A clean stop releases the lease: the next one starts without looking further.
    third.process.send_signal(signal.SIGTERM)
    assert third.process.wait(timeout=30) == 0, third.log.read_text()
    fourth = Agent(secure_broker, namespace, "h1", tmp_path)
    agents.append(fourth)
    fourth.wait_ready(60)
    assert "host_lease_taken_over" not in fourth.log.read_text()


async def test_a_lease_held_from_another_machine_lapses_unless_renewed(
    secure_broker: SecureKafkaBroker, namespace: str
) -> None:
    """No pid to look at: the lease is watched; a renewal refuses, silence lets it lapse."""
    settings = secure_broker.settings("compute-h1", namespace)
    topic = snapshot_topic("compute", namespace, "h1")
    writer = EventWriter(settings, transactional_id=f"{namespace}-compute-h1")
    elsewhere = dataclasses.replace(Lease.mine("peer", 2.0), machine="another-machine")

    async def renew() -> None:
        async with writer.transaction() as txn:
            lease = dataclasses.replace(elsewhere, renewed_at=time.time())
            await txn.append_raw(topic, b"compute@h1/lease", lease.to_bytes())

    async with writer:
        await renew()

        async def renewing() -> None:
            while True:
                await asyncio.sleep(0.4)
                await renew()

        renewer = asyncio.create_task(renewing())
        began = time.monotonic()
        with pytest.raises(HostLeaseHeld, match=r"pid \d+ on another-machine"):
            await HostLease(settings, topic, "compute@h1", 2.0).check()
        assert time.monotonic() - began < 2.0
        renewer.cancel()
        await asyncio.gather(renewer, return_exceptions=True)
        await renew()  # its last renewal: then the peer dies
        began = time.monotonic()
        await HostLease(settings, topic, "compute@h1", 2.0).check()
        assert 0.9 < time.monotonic() - began < 4.0  # watched, then lapsed
