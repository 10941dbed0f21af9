"""The body of one Server-Sent Event of `GET /v1/events/stream` (also its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from virga_gateway.instances.views import InstanceEvent, InstanceView


class Change(msgspec.Struct, kw_only=True):
    """One event the projection folded, as the stream carries it (`event: change`)."""

    event_id: str
    type: str
    """The event's type, e.g. `InstanceStarted`."""
    kind: str | None
    """The kind of resource it is about (`instance`, `volume`, `network`...), null if none."""
    id: str
    """The id of the resource (the event's aggregate)."""
    tenant_id: str | None
    """Whose resource; null for infrastructure (admins only)."""
    occurred_at: datetime
    folded_at: datetime | None = None
    """When the gateway folded it and handed it to the open streams (its clock): with
    `occurred_at`, how long the event took to reach the projection."""
    instance: InstanceView | None = None
    """For an instance: the instance as it is after this event."""
    entry: InstanceEvent | None = None
    """For an instance: this event as its timeline (`/v1/instances/{id}/events`) shows it."""
