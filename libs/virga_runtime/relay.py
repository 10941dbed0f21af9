"""Two pumps that end together: a console's two directions, relayed until either side ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


async def until_first_ends(
    *pumps: Coroutine[Any, Any, None], quiet: tuple[type[BaseException], ...] = ()
) -> None:
    """Run `pumps` side by side until the first ends, then cancel the others and wait for
    them. Errors of a type in `quiet` (a peer gone away) end a pump as its end does; any other
    error is raised."""
    tasks = [asyncio.create_task(pump) for pump in pumps]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, *quiet):
                await task
