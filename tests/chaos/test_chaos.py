"""Chaos: mixed operations through the API while service processes are SIGKILLed at random and
the Kafka broker is restarted once.

Every service runs as its own OS process, supervised as in production: a process that dies
(killed here, or ended by the broker's restart) is started again. Clients retry what failed
in transit with the same Idempotency-Key, so each request is accepted at most once. Afterwards
every accepted request must have reached a final state that its last accepted action explains,
the Ceph pool must hold exactly what the log accounts for, no address or MAC may be handed out
twice, the cross-service invariants of `virga audit check` must hold, and the tenant's usage
as the API rates it must equal a re-rating of the raw events (`virga audit rerate`'s code):
`tests.support.chaos_run`, shared with the 3-broker variant (`test_chaos_cluster.py`).

`VIRGA_CHAOS_OPERATIONS` (200; 120 when `CI` is set, to keep the CI run short) sets the number
of operations, `VIRGA_CHAOS_SECONDS` (60; 30 in CI) the time they are spread over,
`VIRGA_CHAOS_KAFKA_PORT` (19250) the port of this test's own broker (restarting the session's
broker would disturb other tests).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from tests.support.chaos_run import Havoc, chaos_stack, run_and_check
from tests.support.stack import HostSpec, Stack

from virga_devstack.ceph import CephCluster
from virga_devstack.kafka import KafkaBroker
from virga_storage.drivers.rbd import RbdDriver

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.timeout(900)]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
OPERATIONS = int(os.environ.get("VIRGA_CHAOS_OPERATIONS", "120" if IN_CI else "200"))
SECONDS = float(os.environ.get("VIRGA_CHAOS_SECONDS", "30" if IN_CI else "60"))
KAFKA_PORT = int(os.environ.get("VIRGA_CHAOS_KAFKA_PORT", "19250"))
HOSTS = (HostSpec("chaos-a", "rack-1"), HostSpec("chaos-b", "rack-2"))
PREFIX = "vc8"
"""The network agent of chaos-a names its bridge, VXLAN and taps with it (root namespace)."""


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
    run_dir = tmp_path_factory.mktemp("chaos")
    with chaos_stack(broker.bootstrap_servers, ceph_cluster, run_dir, HOSTS, PREFIX) as stack:
        yield stack


async def test_every_accepted_request_survives_kills_and_a_broker_restart(
    stack: Stack, broker: KafkaBroker, ceph_pool: RbdDriver
) -> None:
    async def restart_broker(havoc: Havoc) -> None:
        await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(broker.start)
        havoc.broker_restarted = True
        havoc.broker = f"broker {broker.bootstrap_servers} restarted"

    await run_and_check(
        stack, ceph_pool, restart_broker, operations=OPERATIONS, seconds=SECONDS, prefix=PREFIX
    )
