"""libvirt's domain lifecycle events, as `LibvirtDriver.guest_events` reports them.

libvirt delivers events through an event loop implementation the client registers: the
default one (`virEventRegisterDefaultImpl`), run by `virEventRunDefaultImpl` in a daemon thread
of its own, registered once per process and before the listening connection opens. That
thread runs the callbacks, which only translate and hand each event to the asyncio loop
(`call_soon_threadsafe`); they make no libvirt call that would need the daemon.

The listening connection is its own, apart from the driver's: keepalive (5 s, 3 probes) and
the close callback tell it that libvirtd went away; it then reopens with exponential backoff
(0.5 s doubling to 10 s) and yields `Reconnected`, as events may have been missed meanwhile.

A domain is taken for an instance by its name alone (`virga-<id>`): the agent acts only on
ids the log places on its host.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import libvirt
import structlog

from virga_compute.core.power import PowerChanged
from virga_compute.core.spec import DomainState
from virga_compute.drivers.base import GuestEvent, Reconnected
from virga_compute.drivers.domain_xml import instance_id_from_name
from virga_events.catalog.compute import StopCause

log = structlog.get_logger(__name__)

KEEPALIVE_INTERVAL = 5
KEEPALIVE_COUNT = 3
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0

_STOPPED: dict[int, StopCause] = {
    libvirt.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED: "destroyed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_FAILED: "crashed",  # QEMU died (killed, or crashed)
}
"""Stops that end a guest's life here; a migration, a save or a snapshot restore do not."""

_loop_lock = threading.Lock()
_loop_running = False


def ensure_event_loop() -> None:
    """Register libvirt's default event loop and run it in a daemon thread, once."""
    global _loop_running
    with _loop_lock:
        if _loop_running:
            return
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=_run_event_loop, name="libvirt-events", daemon=True).start()
        _loop_running = True


def _run_event_loop() -> None:
    while True:
        if libvirt.virEventRunDefaultImpl() < 0:
            log.warning("libvirt_event_loop_error")


def translate(instance_id: str, event: int, detail: int, at: datetime) -> PowerChanged | None:
    """A lifecycle event as a power change of the instance; None for one that changes no
    power state the agent records."""
    if event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
        cause = _STOPPED.get(detail)
        return None if cause is None else PowerChanged(instance_id, DomainState.SHUTOFF, cause, at)
    if event == libvirt.VIR_DOMAIN_EVENT_CRASHED:
        return PowerChanged(instance_id, DomainState.CRASHED, "crashed", at)
    if event == libvirt.VIR_DOMAIN_EVENT_STARTED:
        return PowerChanged(instance_id, DomainState.RUNNING, None, at)
    if event == libvirt.VIR_DOMAIN_EVENT_UNDEFINED:
        return PowerChanged(instance_id, DomainState.MISSING, None, at)
    return None


class _Closed:
    """The listening connection was closed under us (libvirtd went away)."""


_Item = GuestEvent | _Closed


def _open(
    uri: str, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[_Item]
) -> tuple[Any, int]:
    """Open the listening connection and register its callbacks (on a worker thread); the
    connection and the lifecycle callback's id."""

    def hand_over(item: _Item) -> None:
        with contextlib.suppress(RuntimeError):  # the agent's loop has closed
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def lifecycle(_conn: Any, dom: Any, event: int, detail: int, _opaque: Any) -> None:
        instance_id = instance_id_from_name(str(dom.name()))
        change = None if instance_id is None else translate(instance_id, event, detail, _now())
        if change is not None:
            hand_over(change)

    def closed(_conn: Any, reason: int, _opaque: Any) -> None:
        log.warning("libvirt_connection_closed", uri=uri, reason=reason)
        hand_over(_Closed())

    conn = libvirt.open(uri)
    try:
        lifecycle_id = conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle, None
        )
        conn.registerCloseCallback(closed, None)
        with contextlib.suppress(libvirt.libvirtError):  # local drivers have no keepalive
            conn.setKeepAlive(KEEPALIVE_INTERVAL, KEEPALIVE_COUNT)
    except BaseException:
        conn.close()
        raise
    return conn, int(lifecycle_id)


def _close(conn: Any, lifecycle_id: int) -> None:
    # A registered callback holds the connection open (and test:///default's state with it).
    with contextlib.suppress(libvirt.libvirtError):
        conn.domainEventDeregisterAny(lifecycle_id)
    with contextlib.suppress(libvirt.libvirtError):
        conn.unregisterCloseCallback()
    with contextlib.suppress(libvirt.libvirtError):
        conn.close()


def _now() -> datetime:
    return datetime.now(UTC)


async def lifecycle_events(uri: str) -> AsyncIterator[GuestEvent]:
    """Lifecycle events of `uri`'s domains until the caller stops iterating (see the module
    docstring); `Reconnected` after each reconnection."""
    ensure_event_loop()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[_Item] = asyncio.Queue()
    delay, lost = BACKOFF_FIRST, False
    while True:
        try:
            conn, lifecycle_id = await asyncio.to_thread(_open, uri, loop, queue)
        except libvirt.libvirtError as exc:
            log.warning("libvirt_events_unavailable", uri=uri, error=str(exc), retry_in=delay)
            lost = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)
            continue
        delay = BACKOFF_FIRST
        try:
            if lost:
                log.info("libvirt_events_reconnected", uri=uri)
                yield Reconnected()
            while not isinstance(item := await queue.get(), _Closed):
                yield item
            lost = True
        finally:
            await asyncio.to_thread(_close, conn, lifecycle_id)
