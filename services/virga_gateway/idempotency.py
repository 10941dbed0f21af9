"""Idempotency-Key handling: key syntax, request fingerprints, and per-key serialization."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec

from virga_gateway.problems import invalid

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


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
