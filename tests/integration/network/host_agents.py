"""What a floating IP's host says, written as that host's network agent would: in its own
topic, one writer (and so one chain) per host; and the check that a floating IP is ACTIVE
only while its port's host says its NAT is in place."""

from __future__ import annotations

from tests.integration.gateway.harness import Gateway
from tests.integration.network.test_network_api import until
from tests.support.kafka import read_events

from virga_eventlog import EventWriter, ensure_topics
from virga_eventlog.topics import event_topic, host_topic, host_topic_spec
from virga_events import Event, new_event
from virga_events.catalog.l3 import (
    FloatingIpAssociated,
    FloatingIpAssociationAccepted,
    FloatingIpUnplumbed,
)
from virga_events.registry import REGISTRY


class Agents:
    """Records events as hosts' network agents do: in each host's topic, one writer (and so
    one chain) per host."""

    def __init__(self, cloud: Gateway) -> None:
        self.cloud = cloud
        self.family = event_topic("network", cloud.namespace)
        self.writers: dict[str, EventWriter] = {}

    async def record(self, host: str, fip_id: str, event: Event) -> None:
        writer = self.writers.get(host)
        if writer is None:
            await ensure_topics(self.cloud.settings, [host_topic_spec(self.family, host)])
            writer = EventWriter(self.cloud.settings, transactional_id=f"{self.family}-{host}")
            await writer.start()
            self.writers[host] = writer
        producer = f"network@{host}"
        envelope = new_event(event, aggregate_id=fip_id, tenant_id=None, producer=producer)
        async with writer.transaction() as txn:
            await txn.append(host_topic(self.family, host), envelope)

    async def close(self) -> None:
        for writer in self.writers.values():
            await writer.stop()


async def confirmed_by_its_host(cloud: Gateway, token: str, fip_id: str, port_id: str) -> None:
    """DOWN until the port's host (hv-3) says its NAT is in place for the controller's
    acceptance, another host's word is not enough; DOWN again once it says the NAT is gone."""
    path = f"/v1/floating-ips/{fip_id}"
    before = (await cloud.call("GET", path, token=token)).body
    assert before["status"] == "DOWN"
    topic = event_topic("network", cloud.namespace)
    events = await read_events(cloud.settings.bootstrap_servers, topic, REGISTRY)
    [acceptance] = [
        e.event_id
        for e in events
        if e.aggregate_id == fip_id and isinstance(e.payload, FloatingIpAssociationAccepted)
    ]
    agents = Agents(cloud)
    try:
        elsewhere = FloatingIpAssociated(port_id=port_id, host="hv-9", acceptance=acceptance)
        await agents.record("hv-9", fip_id, elsewhere)
        folded = await until(
            cloud, path, token, lambda r: r.body["updated_at"] != before["updated_at"]
        )
        assert folded.body["status"] == "DOWN"
        confirmed = FloatingIpAssociated(port_id=port_id, host="hv-3", acceptance=acceptance)
        await agents.record("hv-3", fip_id, confirmed)
        active = await until(cloud, path, token, lambda r: r.body["status"] == "ACTIVE")
        assert active.body["port_id"] == port_id
        gone = FloatingIpUnplumbed(port_id=port_id, host="hv-3", acceptance=acceptance)
        await agents.record("hv-3", fip_id, gone)
        await until(cloud, path, token, lambda r: r.body["status"] == "DOWN")
        await agents.record("hv-3", fip_id, confirmed)
        await until(cloud, path, token, lambda r: r.body["status"] == "ACTIVE")
    finally:
        await agents.close()
