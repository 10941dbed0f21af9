"""The event stream's fan-out: whose changes a stream carries, and a slow client's end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from virga_gateway.stream.hub import QUEUE_LIMIT, ChangeHub, Subscriber
from virga_gateway.stream.routes import drained, sse_change
from virga_gateway.stream.views import Change


def change(tenant_id: str | None, n: int = 0) -> Change:
    return Change(
        event_id=f"e{n}",
        type="VolumeRequested",
        kind="volume",
        id=f"v{n}",
        tenant_id=tenant_id,
        occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


def test_a_tenant_sees_its_own_an_admin_every_change() -> None:
    tenant, admin = Subscriber("t1"), Subscriber(None)
    assert tenant.sees(change("t1"))
    assert not tenant.sees(change("t2"))
    assert not tenant.sees(change(None))  # infrastructure: admins only
    assert admin.sees(change("t2"))
    assert admin.sees(change(None))


def test_a_slow_client_is_dropped_not_buffered_without_bound() -> None:
    subscriber = ChangeHub().subscribe("t1")
    for n in range(QUEUE_LIMIT + 50):
        subscriber.offer(change("t1", n))
    assert subscriber.dropped
    assert subscriber.queue.qsize() == QUEUE_LIMIT + 1
    items = [subscriber.queue.get_nowait() for _ in range(QUEUE_LIMIT + 1)]
    assert items[-1] is None  # the end of its stream
    assert [c.event_id for c in items[:-1] if c is not None][-1] == f"e{QUEUE_LIMIT - 1}"


def test_unsubscribed_streams_get_nothing() -> None:
    hub = ChangeHub()
    subscriber = hub.subscribe(None)
    hub.unsubscribe(subscriber)
    assert not hub.subscribers


def test_the_changes_waiting_go_out_in_one_write_up_to_the_end() -> None:
    queue: asyncio.Queue[Change | None] = asyncio.Queue()
    for n in (1, 2):
        queue.put_nowait(change("t1", n))
    chunk, ended = drained(change("t1", 0), queue)
    assert chunk == b"".join(sse_change(change("t1", n)) for n in range(3))
    assert not ended
    assert queue.empty()
    queue.put_nowait(change("t1", 4))
    queue.put_nowait(None)  # dropped: what came before still goes, then the end
    queue.put_nowait(change("t1", 5))
    chunk, ended = drained(change("t1", 3), queue)
    assert chunk == sse_change(change("t1", 3)) + sse_change(change("t1", 4))
    assert ended
    assert drained(None, queue) == (b"", True)
