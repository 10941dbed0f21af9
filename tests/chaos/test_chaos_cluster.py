"""Chaos on a 3-broker KRaft cluster: the single-broker chaos (`test_chaos.py`, whose run and
checks live in `tests.support.chaos_run`), except that instead of a broker restart the broker
leading `<ns>.api` is SIGKILLed mid-run and started again a while later. Every topic has 3
copies and `min.insync.replicas` 2 (asserted), so no acknowledged write may be lost: 0
accepted requests lost, none accepted twice, every invariant of the single-broker chaos.

`VIRGA_CHAOS_CLUSTER_OPERATIONS` (200; 60 when `CI` is set, to keep the CI run short) sets the
number of operations, `VIRGA_CHAOS_CLUSTER_SECONDS` (60; 30 in CI) the time they are spread
over, `VIRGA_CHAOS_CLUSTER_DOWN_SECONDS` (10) how long the killed broker stays down,
`VIRGA_CHAOS_CLUSTER_KAFKA_PORT` (19270) the first port of the cluster (controllers 100 above).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from tests.support.chaos_run import Havoc, chaos_stack, run_and_check
from tests.support.kafka import running_cluster
from tests.support.stack import HostSpec, Stack

from virga_devstack.ceph import CephCluster
from virga_devstack.kafka_cluster import KafkaCluster
from virga_eventlog import KafkaSettings
from virga_eventlog.replication import TopicReplication, admin_client, describe_replication
from virga_storage.drivers.rbd import RbdDriver

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.timeout(900)]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
OPERATIONS = int(os.environ.get("VIRGA_CHAOS_CLUSTER_OPERATIONS", "60" if IN_CI else "200"))
SECONDS = float(os.environ.get("VIRGA_CHAOS_CLUSTER_SECONDS", "30" if IN_CI else "60"))
DOWN_SECONDS = float(os.environ.get("VIRGA_CHAOS_CLUSTER_DOWN_SECONDS", "10"))
KAFKA_PORT = int(os.environ.get("VIRGA_CHAOS_CLUSTER_KAFKA_PORT", "19270"))
RESTART_SECONDS = 180.0
HOSTS = (HostSpec("chaos3-a", "rack-1"), HostSpec("chaos3-b", "rack-2"))
PREFIX = "vk3"
"""The network agent of chaos3-a names its bridge, VXLAN and taps with it (root namespace)."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[KafkaCluster]:
    with running_cluster(KAFKA_PORT, 3) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def stack(
    cluster: KafkaCluster, ceph_cluster: CephCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    run_dir = tmp_path_factory.mktemp("chaos-cluster")
    with chaos_stack(cluster.bootstrap_servers, ceph_cluster, run_dir, HOSTS, PREFIX) as stack:
        yield stack


async def replication_of(stack: Stack) -> list[TopicReplication]:
    """How each of the stack's topics is replicated."""
    settings = KafkaSettings(bootstrap_servers=stack.bootstrap, namespace=stack.namespace)
    admin = admin_client(settings)
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if n.startswith(f"{stack.namespace}.")]
        return await describe_replication(admin, names)
    finally:
        await admin.close()


async def test_every_accepted_request_survives_kills_and_the_loss_of_the_api_leader(
    stack: Stack, cluster: KafkaCluster, ceph_pool: RbdDriver
) -> None:
    topics = await replication_of(stack)
    assert {t.name for t in topics} >= {f"{stack.namespace}.api", f"{stack.namespace}.compute"}
    weak = [t for t in topics if (t.factor, t.min_insync, t.unclean_election) != (3, 2, False)]
    assert weak == []
    api = f"{stack.namespace}.api"

    async def kill_api_leader(havoc: Havoc) -> None:
        leader = await cluster.leader(api)
        pid = await asyncio.to_thread(leader.kill)
        await asyncio.sleep(DOWN_SECONDS)
        # A node that must replay its log and catch up beside a busy stack may take a while.
        await asyncio.to_thread(leader.start, timeout=RESTART_SECONDS)
        await asyncio.to_thread(cluster.wait_brokers, 3, RESTART_SECONDS)
        havoc.broker_restarted = True
        havoc.broker = f"node {leader.node_id} (pid {pid}), leader of {api}, killed and restarted"

    havoc = await run_and_check(
        stack, ceph_pool, kill_api_leader, operations=OPERATIONS, seconds=SECONDS, prefix=PREFIX
    )
    assert "leader of" in havoc.broker
    # Still 3 copies, 2 in sync, everywhere: nothing was recreated with fewer meanwhile.
    assert [t for t in await replication_of(stack) if (t.factor, t.min_insync) != (3, 2)] == []
