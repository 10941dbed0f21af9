"""Paging through instances: every instance exactly once, even while instances are added."""

from __future__ import annotations

import asyncio

import pytest
from tests.integration.gateway.harness import Gateway

pytestmark = pytest.mark.kafka


async def create_many(gateway: Gateway, token: str, names: list[str]) -> list[str]:
    ids: list[str] = []
    for start in range(0, len(names), 30):  # concurrent requests share transactions
        batch = names[start : start + 30]
        created = await asyncio.gather(*(gateway.instance(token, name) for name in batch))
        ids += [c["id"] for c in created]
    return ids


async def test_pages_of_50_return_every_instance_once(gateway: Gateway) -> None:
    _, token = await gateway.tenant()
    _, other = await gateway.tenant()
    first_ids = await create_many(gateway, token, [f"vm-{i}" for i in range(120)])
    await gateway.instance(other, "not-mine")

    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    added: list[str] = []
    while True:
        query = f"?limit=50&cursor={cursor}" if cursor else "?limit=50"
        page = await gateway.call("GET", f"/v1/instances{query}", token=token)
        assert page.status == 200
        assert len(page.body["items"]) <= 50
        seen += [item["id"] for item in page.body["items"]]
        pages += 1
        if pages == 1:  # instances created mid-walk come after everything already listed
            added = await create_many(gateway, token, ["late-1", "late-2"])
        cursor = page.body["next"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 122
    assert set(seen) == set(first_ids + added)
    assert set(seen[-2:]) == set(added)

    stamps = [
        (i["created_at"], i["id"])
        for i in (await gateway.call("GET", "/v1/instances?limit=200", token=token)).body["items"]
    ]
    assert stamps == sorted(stamps)


async def test_bad_paging_parameters_are_400_naming_them(gateway: Gateway) -> None:
    _, token = await gateway.tenant()
    for query, field in [
        ("?cursor=not-a-cursor", "cursor"),
        ("?cursor=%25%25", "cursor"),
        ("?limit=0", "limit"),
        ("?limit=201", "limit"),
        ("?limit=ten", "limit"),
        ("?status=SLEEPING", "status"),
    ]:
        reply = await gateway.call("GET", f"/v1/instances{query}", token=token)
        assert reply.status == 400, query
        assert reply.problem_fields == [field], query
