"""Idempotency-Key handling: key syntax, request fingerprints, and per-key serialization;
the records of first responses and their fold."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import msgspec

from virga_events import Envelope
from virga_events.catalog import api
from virga_gateway.problems import invalid
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


class IdempotencyRecord(msgspec.Struct, frozen=True):
    """The first response to a POST with an Idempotency-Key, replayed to its retries."""

    method_path: str
    request_sha256: str
    status: int
    body: str
    recorded_at: datetime


IDEMPOTENCY_TTL_SECONDS = 24 * 3600
"""How long an Idempotency-Key is remembered (as Stripe and the IETF draft suggest)."""

folds: Folds[GatewayState] = Folds()


@folds.on(api.IdempotentRequestRecorded)
def _idempotent_request_recorded(
    state: GatewayState, env: Envelope, event: api.IdempotentRequestRecorded
) -> None:
    records = state.idempotency
    # Keys are kept a day; insertion order is (nearly) time order, so expired keys are in front.
    horizon = env.occurred_at - timedelta(seconds=IDEMPOTENCY_TTL_SECONDS)
    while records:
        oldest = next(iter(records))
        if records[oldest].recorded_at >= horizon:
            break
        del records[oldest]
    records[env.aggregate_id] = IdempotencyRecord(
        event.method_path, event.request_sha256, event.status, event.body, env.occurred_at
    )


def parse_key(value: str | None) -> str | None:
    """The header's key, None when absent, or a 400 naming the header."""
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in value):
        raise invalid(400, HEADER, f"must be 1-{MAX_KEY_LENGTH} printable ASCII characters")
    return value


def fingerprint(body: object) -> str:
    """sha256 of the body's canonical JSON (keys sorted, no whitespace)."""
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()


def record_id(scope: str, key: str) -> str:
    """The aggregate id of an IdempotentRequestRecorded: a principal's key, of bounded size."""
    return "idempotency-" + hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()


class KeyedLocks:
    """One asyncio lock per key, forgotten once nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str | None) -> AsyncIterator[None]:
        """Run the block alone among holders of `key`; None holds nothing."""
        if key is None:
            yield
            return
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
