"""The service processes on a secure broker, each configured only through VIRGA_KAFKA_*.

The gateway, the scheduler and a compute agent run as OS processes with their own SCRAM
user; a boot goes through all three, so each one's reads, transactional writes, consumer
group offsets and topic creation at start pass the ACLs derived for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from tests.support.api import Api
from tests.support.stack import HostSpec, Stack

from virga_devstack.kafka_security import SecureKafkaBroker

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


@pytest.fixture(scope="module")
def stack(
    secure_broker: SecureKafkaBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    stack = Stack(
        secure_broker.bootstrap_servers,
        tmp_path_factory.mktemp("secure-stack"),
        (HostSpec("h1", "r1"),),
        host_topics_added=True,
    )
    asyncio.run(secure_broker.provision(stack.namespace))
    asyncio.run(secure_broker.add_host("h1", stack.namespace))
    stack.build()
    for name, process in stack.processes.items():
        # compute-h1 runs as its host's user compute-h1; the others as their service
        user = name if name.startswith("compute-") else name.split("-", 1)[0]
        process.env.update(secure_broker.environment(user))
    with stack.running():
        yield stack


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, stack.gateway_url, stack.admin_token)


async def test_an_instance_boots_through_services_that_each_have_their_own_identity(
    stack: Stack, admin: Api
) -> None:
    _, token = await admin.create_tenant("secure")
    tenant = admin.as_token(token)
    created = await tenant.create_instance("web-1")
    [running] = await tenant.wait_status([created["id"]], {"RUNNING"}, seconds=60)
    assert running["host"] == "h1"
    assert "Authentication failed" not in stack.logs()
