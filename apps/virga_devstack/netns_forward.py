"""Forward TCP ports on 127.0.0.1 inside a network namespace to the same ports on this
namespace's 127.0.0.1: how a libvirt host's QEMU (`libvirt_host`) reaches the local Ceph.

The test cluster listens on the root namespace's loopback only (monitor and OSD), and a
namespace's 127.0.0.1 is its own. Routing loopback traffic between namespaces would need
`route_localnet` and NAT in the root namespace; a forwarder needs nothing there: it makes its
listening sockets inside the host's namespace (`setns` on its thread, then back) and connects
from the root namespace. librbd learns the OSD's address (127.0.0.1:port) from the monitor
map, so forwarding the monitor's and the OSDs' ports is enough.

    python -m virga_devstack.netns_forward PID PORT [PORT ...]

(PID: any process in the target network namespace, e.g. the host's namespace holder.)
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence

CLONE_NEWNET = 0x40000000
LOOPBACK = "127.0.0.1"


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def listen_inside(pid: int, ports: Sequence[int]) -> list[socket.socket]:
    """Listening sockets on 127.0.0.1:port in the network namespace of `pid`."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    sockets = []
    try:
        _setns(target)
        try:
            for port in ports:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((LOOPBACK, port))
                sock.listen(128)
                sock.setblocking(False)
                sockets.append(sock)
        finally:
            _setns(own)
    finally:
        os.close(own)
        os.close(target)
    return sockets


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


def _handler(port: int) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(LOOPBACK, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    return forward


async def serve(pid: int, ports: Sequence[int]) -> None:
    servers = [
        await asyncio.start_server(_handler(port), sock=sock)
        for port, sock in zip(ports, listen_inside(pid, ports), strict=True)
    ]
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main(argv: Sequence[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    pid, ports = int(argv[0]), [int(port) for port in argv[1:]]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(pid, ports))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
