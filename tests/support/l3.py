"""Helpers of the L3 data path tests: a log folded into one agent's state, sockets made
inside namespaces, and connection checks."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pyroute2.netns import setns

from virga_events import Envelope
from virga_events.envelope import new_event
from virga_events.registry import Event
from virga_network.agent.core.fold import evolve
from virga_network.agent.core.model import NetworkAgentState

T = TypeVar("T")


class Log:
    """The events the agent folds, folded as they are written."""

    def __init__(self, host: str) -> None:
        self.state = NetworkAgentState(host=host)

    def write(self, event: Event, aggregate: str, tenant: str | None) -> None:
        envelope: Envelope[Any] = new_event(
            event, aggregate_id=aggregate, tenant_id=tenant, producer="test"
        )
        self.state = evolve(self.state, envelope)


def inside(netns: str, call: Callable[[], T]) -> T:
    """Run `call` on a thread inside `netns` (sockets keep the namespace they were made in)."""
    result: list[T | BaseException] = []

    def run() -> None:
        try:
            setns(netns, flags=0)
            result.append(call())
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def listener(netns: str, port: int) -> socket.socket:
    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        sock.listen(64)
        return sock

    return inside(netns, make)


def connects(netns: str, ip: str, port: int, timeout: float = 1.0) -> bool:
    def connect() -> bool:
        try:
            socket.create_connection((ip, port), timeout=timeout).close()
            return True
        except OSError:
            return False

    return inside(netns, connect)


def source_seen(server: socket.socket, netns: str, ip: str, port: int) -> str:
    """The source address `server` sees when `netns` connects to it."""
    assert connects(netns, ip, port, timeout=3.0)
    server.settimeout(3.0)
    conn, (source, _) = server.accept()
    conn.close()
    return str(source)


def accepted(server: socket.socket, peer_port: int) -> socket.socket:
    """The connection `server` accepted from `peer_port` (others queued before are closed)."""
    server.settimeout(3.0)
    while True:
        conn, (_, port) = server.accept()
        if port == peer_port:
            return conn
        conn.close()


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
    return check()


async def eventually_async(check: Callable[[], bool], within: float = 10.0) -> bool:
    """`eventually`, letting the event loop run between tries (the driver's repeated
    gratuitous ARPs are tasks on it)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):
            return True
        await asyncio.sleep(0.02)
    return await asyncio.to_thread(check)


def captured(netns: str, action: Callable[[], object], ifname: str = "seg") -> str:
    """The IPv4 source and destination addresses of the frames `ifname` in `netns` receives
    while `action` runs, as text."""

    def open_capture() -> socket.socket:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
        sock.bind((ifname, 0x0800))
        sock.settimeout(0.2)
        return sock

    sock = inside(netns, open_capture)
    seen: list[str] = []
    try:
        action()
        while True:
            try:
                frame = sock.recv(128)
            except TimeoutError:
                break
            seen.append(f"{socket.inet_ntoa(frame[26:30])}>{socket.inet_ntoa(frame[30:34])}")
    finally:
        sock.close()
    return " ".join(seen)
