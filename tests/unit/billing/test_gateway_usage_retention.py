"""Deleted resources' usage history leaves the gateway's projection once it lies in closed
months past the retention (`virga_gateway.billing.retention`): `/v1/usage` answers every window
after it exactly as before, and refuses (422, `from`) a window that would miss it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from tests.unit.gateway.app import CONFIG, unstarted

from virga_events import Envelope, Event, new_event
from virga_events.catalog import Flavor, api
from virga_events.catalog.billing import PricesSet
from virga_events.catalog.compute import (
    HostHeartbeat,
    InstanceDeleted,
    InstanceStarted,
    UsageSampled,
)
from virga_events.catalog.storage import VolumeCreated, VolumeDeleted
from virga_gateway.state import GatewayState, evolve, restore, snapshot
from virga_gateway.tokens import derive_token, token_sha256

Client = TestClient[web.Request, web.Application]
T1_TOKEN = derive_token(CONFIG.token_secret, "tok-1")
T2_TOKEN = derive_token(CONFIG.token_secret, "tok-2")
SMALL = Flavor(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=20)


def on(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def fact(payload: Event, aggregate: str, when: datetime, tenant: str | None = "t1") -> Envelope:
    return new_event(
        payload, aggregate_id=aggregate, tenant_id=tenant, producer="test", occurred_at=when
    )


def sample(tx: int) -> UsageSampled:
    return UsageSampled(host="h1", period_seconds=60, cpu_time_ns=0, memory_kb=0,
                        disk_read_bytes=0, disk_write_bytes=0, net_rx_bytes=0,
                        net_tx_bytes=tx)  # fmt: skip


def instance(iid: str, tenant: str, start: datetime, end: datetime | None) -> list[Envelope]:
    facts = [
        fact(api.InstanceRequested(name=iid, flavor=SMALL), iid, start, tenant),
        fact(InstanceStarted(host="h1"), iid, start + timedelta(hours=1), tenant),
        fact(sample(3 * 10**9), iid, start + timedelta(hours=2), tenant),
    ]
    if end is not None:
        facts.append(fact(InstanceDeleted(host="h1"), iid, end, tenant))
    return facts


def february_and_march() -> list[Envelope]:
    """Tenant t1: an instance and a volume deleted in February, one instance running since
    February, one deleted in March; tenant t2: an instance deleted in February."""
    prices = PricesSet(
        currency="EUR", effective_from=on(1, 1), flavor_hour={"m1.small": "0.1"},
        volume_gb_month="0.04", egress_gb="0.05", public_ip_hour="0.005",
    )  # fmt: skip
    return [
        fact(
            api.TokenIssued(token_sha256=token_sha256(CONFIG.admin_token), role="admin"),
            "admin",
            on(1, 1),
            None,
        ),
        fact(api.TenantCreated(name="one"), "t1", on(1, 1), "t1"),
        fact(api.TenantCreated(name="two"), "t2", on(1, 1), "t2"),
        fact(
            api.TokenIssued(token_sha256=token_sha256(T1_TOKEN), role="tenant"), "tok-1", on(1, 1)
        ),
        fact(
            api.TokenIssued(token_sha256=token_sha256(T2_TOKEN), role="tenant"),
            "tok-2",
            on(1, 1),
            "t2",
        ),
        fact(prices, "prices", on(1, 1), None),
        *instance("i-old", "t1", on(2, 1), on(2, 10)),
        fact(VolumeCreated(name="data", size_gb=10), "v-old", on(2, 1), "t1"),
        fact(VolumeDeleted(), "v-old", on(2, 20, 6), "t1"),
        *instance("i-live", "t1", on(2, 5), None),
        *instance("i-march", "t1", on(2, 28, 22), on(3, 1, 0, 20)),
        *instance("i-t2", "t2", on(2, 3), on(2, 4)),
    ]


def heartbeat(when: datetime) -> Envelope:
    return fact(HostHeartbeat(running=1), "h1", when, None)


def projection(*extra: Envelope) -> GatewayState:
    state = GatewayState()
    for envelope in (*february_and_march(), *extra):
        state = evolve(state, envelope)
    return state


@pytest.fixture
async def api_on() -> AsyncIterator[Any]:
    runner, app = unstarted()
    runner.ready.set()
    async with TestClient(TestServer(app)) as client:

        async def usage(state: GatewayState, token: str, start: str, end: str) -> Any:
            runner.state = state
            query = f"from={start}&to={end}"
            headers = {"Authorization": f"Bearer {token}"}
            async with client.get(f"/v1/usage?{query}", headers=headers) as reply:
                return reply.status, await reply.json()

        yield usage


WINDOWS = [
    ("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"),  # this month
    ("2026-02-20T06:00:01Z", "2026-03-02T00:00:00Z"),  # just after the last pruned moment
    ("2026-02-25T00:00:00Z", "2026-02-26T00:00:00Z"),  # February, after the pruned history
]


async def test_usage_answers_stay_equal_after_deleted_history_is_pruned(api_on: Any) -> None:
    # 00:30 on March 1st: February closed less than the retention (1 h) ago, nothing pruned.
    kept = projection(heartbeat(on(3, 1, 0, 30)))
    assert {"i-old", "i-live", "i-march", "i-t2"} <= set(kept.billing.instances)
    pruned = projection(heartbeat(on(3, 1, 1, 1)))
    assert sorted(pruned.billing.instances) == ["i-live", "i-march"]
    assert "v-old" not in pruned.billing.volumes
    for start, end in WINDOWS:
        before = await api_on(kept, T1_TOKEN, start, end)
        assert before[0] == 200
        assert await api_on(pruned, T1_TOKEN, start, end) == before
        rebuilt = restore(snapshot(pruned))  # a restart from a snapshot
        assert await api_on(rebuilt, T1_TOKEN, start, end) == before
    # The first window really holds the running instance and March's deleted one.
    _, this_month = await api_on(pruned, T1_TOKEN, *WINDOWS[0])
    assert {line["resource_id"] for line in this_month["lines"]} == {"i-live", "i-march"}


@pytest.mark.parametrize(
    "start",
    ["2026-02-01T00:00:00Z", "2026-02-15T00:00:00Z", "2026-02-20T06:00:00Z"],
)
async def test_a_window_reaching_pruned_history_is_refused_naming_from(
    api_on: Any, start: str
) -> None:
    kept = projection(heartbeat(on(3, 1, 0, 30)))
    pruned = projection(heartbeat(on(3, 1, 1, 1)))
    status, answer = await api_on(kept, T1_TOKEN, start, "2026-03-02T00:00:00Z")
    assert status == 200
    if start < "2026-02-20T06:00:00Z":  # at that instant v-old is gone: refused to be safe
        assert {line["resource_id"] for line in answer["lines"]} >= {"v-old"}
    status, problem = await api_on(pruned, T1_TOKEN, start, "2026-03-02T00:00:00Z")
    assert status == 422
    assert [error["field"] for error in problem["errors"]] == ["from"]
    assert "2026-02-20T06:00:00+00:00" in problem["detail"]


async def test_another_tenants_pruning_refuses_it_only_before_its_own_history(
    api_on: Any,
) -> None:
    pruned = projection(heartbeat(on(3, 1, 1, 1)))
    status, _ = await api_on(pruned, T2_TOKEN, "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z")
    assert status == 422  # i-t2 ran on February 3rd-4th: pruned
    status, answer = await api_on(pruned, T2_TOKEN, "2026-02-05T00:00:00Z", "2026-03-01T00:00:00Z")
    assert (status, answer["lines"]) == (200, [])


def test_a_late_fact_about_a_pruned_instance_does_not_bring_it_back() -> None:
    late = fact(InstanceStarted(host="h1"), "i-old", on(3, 1, 2))
    state = projection(heartbeat(on(3, 1, 1, 1)), late)
    assert "i-old" not in state.billing.instances


def test_nothing_is_pruned_while_it_still_runs_or_before_its_month_closes() -> None:
    # Deleted on March 1st at 00:20; it goes once April is an hour old, not before.
    state = projection(heartbeat(on(3, 31, 23)))
    assert "i-march" in state.billing.instances
    state = evolve(state, heartbeat(on(4, 1, 1, 1)))
    assert "i-march" not in state.billing.instances
    assert "i-live" in state.billing.instances  # never deleted: kept
