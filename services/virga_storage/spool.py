"""The bounds of image imports on one storage host: how many run at once, and how much spool
disk they hold together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator


class SpoolFull(Exception):
    """Taking more spool space would pass the host's cap."""


class SpoolBudget:
    """The spool bytes every import in flight holds together, against a cap."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0

    @contextlib.contextmanager
    def lease(self) -> Iterator[SpoolLease]:
        """A lease for one import, given back whole when the block ends."""
        lease = SpoolLease(self)
        try:
            yield lease
        finally:
            lease.close()


class SpoolLease:
    """What one import holds of a `SpoolBudget`; all of it is given back on close."""

    def __init__(self, budget: SpoolBudget) -> None:
        self._budget = budget
        self.held = 0

    def take(self, size: int) -> None:
        """Hold `size` more bytes, or raise `SpoolFull` holding nothing more."""
        budget = self._budget
        if budget.used + size > budget.capacity:
            raise SpoolFull(
                f"the upload spool is full ({budget.used} of {budget.capacity} bytes in use)"
            )
        budget.used += size
        self.held += size

    def close(self) -> None:
        """Give back everything held."""
        self._budget.used -= self.held
        self.held = 0


class ImportSlots:
    """At most `size` imports at once; a further one waits up to `wait_seconds` for a slot."""

    def __init__(self, size: int, wait_seconds: float) -> None:
        self._semaphore = asyncio.Semaphore(size)
        self._wait_seconds = wait_seconds

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        """Yields whether a slot was had (False: every slot stayed busy for the whole wait)."""
        try:
            await asyncio.wait_for(self._semaphore.acquire(), self._wait_seconds)
        except TimeoutError:
            yield False
            return
        try:
            yield True
        finally:
            self._semaphore.release()
