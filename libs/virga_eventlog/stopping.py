"""Stopping a Kafka client that may be cut off from the log, within a bound."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


async def stop_within(stop: Coroutine[Any, Any, None], seconds: float) -> str | None:
    """Run `stop` for at most `seconds`; what went wrong, or None.

    aiokafka's clients may raise CancelledError from a stop nobody cancelled (the consumer's
    fetcher and the producer's sender await their own cancelled requests): that is reported
    as "cancelled", never raised, so it cannot pass for the caller's own cancellation. The
    caller's own cancellation still reaches it.
    """
    stopping = asyncio.ensure_future(stop)
    await asyncio.wait({stopping}, timeout=seconds)
    if not stopping.done():
        stopping.cancel()
        return f"still stopping after {seconds} s"
    if stopping.cancelled():
        return "cancelled"
    error = stopping.exception()
    return None if error is None else repr(error)
