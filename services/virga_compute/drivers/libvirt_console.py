"""A guest's serial console through libvirt: `virDomainOpenConsole` into a nonblocking
`virStream`, read on libvirt's event loop (`libvirt_events.ensure_event_loop`).

Each session has a connection of its own, opened after the event loop is registered (a
stream's callbacks only fire on such a connection), so a session never holds the driver's one
libvirt thread. The console is opened with VIR_DOMAIN_CONSOLE_FORCE: a second session takes
the console over, as `virsh console --force` does, and the first one's stream ends.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import libvirt
import structlog

from virga_compute.drivers.base import (
    DriverError,
    HypervisorUnavailable,
    InstanceNotFound,
    OperationNotSupported,
)
from virga_compute.drivers.domain_xml import domain_name
from virga_compute.drivers.libvirt_domains import error_code
from virga_compute.drivers.libvirt_events import ensure_event_loop

log = structlog.get_logger(__name__)

CHUNK = 64 * 1024
_WATCHED = (
    libvirt.VIR_STREAM_EVENT_READABLE
    | libvirt.VIR_STREAM_EVENT_ERROR
    | libvirt.VIR_STREAM_EVENT_HANGUP
)


class LibvirtConsole:
    """A `ConsoleStream` over one libvirt console stream."""

    def __init__(self, loop: asyncio.AbstractEventLoop, instance_id: str) -> None:
        self._loop = loop
        self._instance_id = instance_id
        self._output: asyncio.Queue[bytes] = asyncio.Queue()
        self._lock = threading.Lock()
        self._conn: Any = None
        self._stream: Any = None
        self._closed = False

    @classmethod
    async def open(cls, uri: str, instance_id: str) -> LibvirtConsole:
        ensure_event_loop()
        console = cls(asyncio.get_running_loop(), instance_id)
        await asyncio.to_thread(console._open, uri)
        return console

    def _open(self, uri: str) -> None:
        try:
            conn = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            raise HypervisorUnavailable(f"cannot connect to {uri}: {exc}") from exc
        try:
            domain = conn.lookupByName(domain_name(self._instance_id))
            stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
            domain.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
            stream.eventAddCallback(_WATCHED, self._on_event, None)
        except libvirt.libvirtError as exc:
            conn.close()
            code = error_code(exc)
            if code == libvirt.VIR_ERR_NO_DOMAIN:
                raise InstanceNotFound(self._instance_id) from exc
            if code == libvirt.VIR_ERR_NO_SUPPORT:
                raise OperationNotSupported(f"{uri}: {exc}") from exc
            raise DriverError(f"console of {self._instance_id}: {exc}") from exc
        self._conn, self._stream = conn, stream

    def _on_event(self, stream: Any, events: int, _opaque: object) -> None:
        # On libvirt's event thread: drain what is there, hand it to the asyncio loop.
        ended = bool(events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP))
        while not ended:
            try:
                data = stream.recv(CHUNK)
            except libvirt.libvirtError as exc:
                log.info("console_stream_error", instance_id=self._instance_id, error=str(exc))
                ended = True
                break
            if data == -2:  # nothing more for now
                return
            if not data:
                ended = True
                break
            self._loop.call_soon_threadsafe(self._output.put_nowait, bytes(data))
        self._end()

    def _end(self) -> None:
        """Close the stream and connection (any thread), and let `read` return b""."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            stream, conn = self._stream, self._conn
        try:
            if stream is not None:
                stream.eventRemoveCallback()
                stream.abort()
        except libvirt.libvirtError:
            pass  # taken over or gone: nothing left to end
        finally:
            if conn is not None:
                conn.close()
            self._loop.call_soon_threadsafe(self._output.put_nowait, b"")

    async def read(self) -> bytes:
        if self._closed and self._output.empty():
            return b""
        return await self._output.get()

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(self._send, data)

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._closed:
                raise DriverError(f"console of {self._instance_id} is closed")
            try:
                sent = self._stream.send(bytes(view))
            except libvirt.libvirtError as exc:
                raise DriverError(f"console of {self._instance_id}: {exc}") from exc
            if sent == -2:
                time.sleep(0.01)  # the guest's UART is behind: wait for it
                continue
            view = view[sent:]

    async def close(self) -> None:
        await asyncio.to_thread(self._end)
