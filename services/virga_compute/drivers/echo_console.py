"""The memory driver's serial console: it echoes what is typed, as a terminal in echo mode."""

from __future__ import annotations

import asyncio

from virga_compute.drivers.base import DriverError


class EchoConsole:
    """A `ConsoleStream` whose guest answers each write with the same bytes."""

    def __init__(self, banner: bytes = b"") -> None:
        self._output: asyncio.Queue[bytes] = asyncio.Queue()
        self._closed = False
        if banner:
            self._output.put_nowait(banner)

    @property
    def closed(self) -> bool:
        return self._closed

    async def read(self) -> bytes:
        if self._closed and self._output.empty():
            return b""
        return await self._output.get()

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise DriverError("the console is closed")
        self._output.put_nowait(data)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._output.put_nowait(b"")
