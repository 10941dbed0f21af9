"""Network namespaces, veths and guests for network tests: made by name, always removed."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from pyroute2.netns import setns


def sh(
    *args: str, netns: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command (in `netns` if given); raise with its output when it fails and `check`."""
    command = [*(["ip", "netns", "exec", netns] if netns else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stdout}{result.stderr}")
    return result


def unique(prefix: str) -> str:
    """A fresh name starting with `prefix` (short enough for interfaces and namespaces)."""
    return f"{prefix}{uuid.uuid4().hex[: 14 - len(prefix)]}"


@contextmanager
def namespaces(names: Sequence[str]) -> Iterator[list[str]]:
    """Create the namespaces (loopback up); delete them on exit, even after a failure."""
    made: list[str] = []
    try:
        for name in names:
            sh("ip", "netns", "add", name)
            made.append(name)
            sh("ip", "link", "set", "lo", "up", netns=name)
        yield made
    finally:
        for name in made:
            sh("ip", "netns", "del", name, check=False)


def links(netns: str) -> set[str]:
    """Interface names in `netns`."""
    out = sh("ip", "-o", "link", "show", netns=netns).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line}


def plug_guest(host_ns: str, peer: str, guest_ns: str, mac: str, ips: Sequence[str]) -> None:
    """Move a port's veth peer from `host_ns` into `guest_ns` as eth0 with `mac` and `ips`."""
    sh("ip", "link", "set", peer, "netns", guest_ns, netns=host_ns)
    sh("ip", "link", "set", peer, "name", "eth0", netns=guest_ns)
    sh("ip", "link", "set", "eth0", "address", mac, netns=guest_ns)
    for ip in ips:
        # IPv6 without duplicate address detection: usable at once, as a test needs it.
        extra = ["nodad"] if ":" in ip else []
        plen = "64" if ":" in ip else "24"
        sh("ip", "addr", "add", f"{ip}/{plen}", "dev", "eth0", *extra, netns=guest_ns)
    sh("ip", "link", "set", "eth0", "up", netns=guest_ns)


def pings(guest_ns: str, ip: str, count: int = 1, wait: float = 1.0) -> bool:
    """Whether `ip` answers a ping from `guest_ns`."""
    result = sh(
        "ping", "-c", str(count), "-W", str(wait), "-i", "0.2", ip, netns=guest_ns, check=False
    )
    return result.returncode == 0


def _listener_in(netns: str, port: int) -> socket.socket:
    """A TCP socket listening on 127.0.0.1:`port` inside `netns` (a socket keeps the
    namespace it was made in; setns moves only the short-lived thread that makes it)."""
    made: list[socket.socket | BaseException] = []

    def make() -> None:
        try:
            setns(netns, flags=0)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(64)
            sock.setblocking(False)
            made.append(sock)
        except BaseException as exc:
            made.append(exc)

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    result = made[0]
    if isinstance(result, BaseException):
        raise result
    return result


class KafkaRelay:
    """Makes the test broker (on the root namespace's loopback) reachable at the same address
    from inside namespaces, so agents started with `ip netns exec` find it as configured."""

    def __init__(self, port: int, netns: Sequence[str]) -> None:
        self._port = port
        self._netns = list(netns)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> KafkaRelay:
        self._thread.start()
        for name in self._netns:
            sock = _listener_in(name, self._port)
            future = asyncio.run_coroutine_threadsafe(self._serve(sock), self._loop)
            self._servers.append(future.result(10))
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _serve(self, sock: socket.socket) -> asyncio.Server:
        return await asyncio.start_server(self._relay, sock=sock)

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._port)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()
                with contextlib.suppress(Exception):
                    await w.wait_closed()
            self._tasks.discard(task)
