"""How the console server asks the agent's runner to let a session in.

A ticket is used once the log says so (ConsoleSessionOpened, decided by the pure
`core.console.open_session`). The server hands a `ConsoleOpen` to the runner as a signal,
next to the hypervisor's power signals (`ConsoleGate.signals` merges them), and learns the
answer from the state once the runner has decided it: the runner asks for the next signal only
after the previous one's events are committed and folded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from virga_compute.core.console import ConsoleOpen

_END = object()


class ConsoleGate:
    """Queue of console claims, merged into the agent's signals."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[Any, asyncio.Future[None] | None]] = asyncio.Queue()

    async def claim(self, signal: ConsoleOpen, within: float) -> None:
        """Return once the runner has decided `signal` (or after `within` seconds, or once
        deciding failed): the state then says whether the session got the ticket."""
        decided: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((signal, decided))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(decided), within)

    async def signals(self, inner: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """`inner`'s signals and the console claims, in arrival order; a failure of `inner`
        is raised here (it stops the service, as it would alone)."""
        queue = self._queue

        async def pump() -> None:
            try:
                async for signal in inner:
                    queue.put_nowait((signal, None))
            finally:
                queue.put_nowait((_END, None))

        pumping = asyncio.create_task(pump())
        try:
            while True:
                signal, decided = await queue.get()
                if signal is _END:
                    await asyncio.wait({pumping})
                    pumping.result()  # raises what ended the inner signals
                    raise RuntimeError("the guest signals ended")
                try:
                    yield signal
                finally:  # resumed (or closed) only once the runner has acted on it
                    if decided is not None and not decided.done():
                        decided.set_result(None)
        finally:
            pumping.cancel()
