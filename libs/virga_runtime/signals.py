"""Deciding on signals from outside the log (`ServiceDefinition.signals`): a hypervisor's
lifecycle events, say. Each signal is decided like a tick (`Decider._act`): `on_signal` sees
the state, and its events and effects commit in one transaction of their own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from virga_runtime.deciding import Decider
from virga_runtime.service import Intent, S


class SignalDecider(Decider[S]):
    """The part of `ServiceRunner` that decides on external signals, once it is ready."""

    ready: asyncio.Event

    async def _signal_loop(self) -> None:
        definition = self.definition
        assert definition.signals is not None
        assert definition.on_signal is not None
        on_signal = definition.on_signal
        await self.ready.wait()
        # The tick loop, woken by readiness first, takes the lock for `on_ready` before this.
        await asyncio.sleep(0)
        async for signal in definition.signals():
            await self._act(partial(self._decide_signal, on_signal, signal), "signal")

    def _decide_signal(
        self, on_signal: Callable[[S, Any], Sequence[Intent]], signal: Any
    ) -> Sequence[Intent]:
        return on_signal(self.state, signal)
