"""Fan-out of folded events to the open streams, each behind a bounded queue.

The runner calls `ChangeHub.publish` once per event it folds live (never during its rebuild);
publishing never blocks the fold. Each subscriber has a queue of `QUEUE_LIMIT` changes: a
client that reads slower than the log moves is dropped (its stream ends with an `overflow`
event) rather than buffered without bound; it reconnects and reads the lists afresh.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

from virga_events import Envelope
from virga_gateway.instances.views import instance_event, instance_view
from virga_gateway.state import GatewayState
from virga_gateway.stream.views import Change

QUEUE_LIMIT = 1000
"""Changes waiting for one client before it is dropped."""

_TABLES = (
    ("instance", "instances"),
    ("volume", "volumes"),
    ("network", "networks"),
    ("port", "ports"),
    ("image", "images"),
    ("floating_ip", "floating_ips"),
    ("router", "routers"),
    ("security_group", "security_groups"),
    ("server_group", "server_groups"),
    ("host", "hosts"),
    ("tenant", "tenants"),
    ("token", "tokens"),
)


@dataclass(eq=False)
class Subscriber:
    """One open stream: whose changes it may see, and what waits for it."""

    tenant_id: str | None
    """The tenant whose changes it carries; None: every change (an admin)."""
    queue: asyncio.Queue[Change | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_LIMIT + 1)
    )
    dropped: bool = False

    def offer(self, change: Change) -> None:
        if self.dropped:
            return
        if self.queue.qsize() >= QUEUE_LIMIT:
            self.dropped = True
            self.queue.put_nowait(None)  # the one slot kept for the end
            return
        self.queue.put_nowait(change)

    def sees(self, change: Change) -> bool:
        return self.tenant_id is None or change.tenant_id == self.tenant_id


@dataclass
class ChangeHub:
    subscribers: set[Subscriber] = field(default_factory=set)

    def subscribe(self, tenant_id: str | None) -> Subscriber:
        subscriber = Subscriber(tenant_id)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def publish(self, state: GatewayState, envelope: Envelope) -> None:
        if not self.subscribers:
            return
        change = change_of(state, envelope)
        for subscriber in list(self.subscribers):
            if subscriber.sees(change):
                subscriber.offer(change)


def change_of(state: GatewayState, envelope: Envelope) -> Change:
    """What the stream says of `envelope`, folded into `state`: whose it is comes from the
    projection where it knows the resource (an agent's event about an instance names no
    tenant), else from the event; unknown means an admin's."""
    aggregate = envelope.aggregate_id
    folded_at = datetime.now(UTC)
    instance = state.instances.get(aggregate)
    if instance is not None and instance.requested and instance.flavor is not None:
        last = instance.history[-1] if instance.history else None
        entry = last if last is not None and last.event_id == envelope.event_id else None
        return Change(
            event_id=envelope.event_id,
            type=envelope.type,
            kind="instance",
            id=aggregate,
            tenant_id=instance.tenant_id,
            occurred_at=envelope.occurred_at,
            folded_at=folded_at,
            instance=instance_view(instance),
            entry=instance_event(entry) if entry is not None else None,
        )
    kind, owner = None, envelope.tenant_id
    for name, table in _TABLES:
        record = getattr(state, table).get(aggregate)
        if record is not None:
            kind, owner = name, getattr(record, "tenant_id", None) or owner
            break
    return Change(
        event_id=envelope.event_id,
        type=envelope.type,
        kind=kind,
        id=aggregate,
        tenant_id=owner,
        occurred_at=envelope.occurred_at,
        folded_at=folded_at,
    )
