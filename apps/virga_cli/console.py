"""`virga instance console NAME`: the serial console in this terminal, as `virsh console`.

The CLI asks the API for a one-time ticket (`POST /v1/instances/{id}/console`), opens the
WebSocket it names, puts the terminal in raw mode (every key goes to the guest, Ctrl-C
included) and relays both ways until Ctrl-] (detach, as in virsh), the end of standard input,
or the session's end (the guest is gone, or a later session took the console over). The
terminal's modes are restored whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

import aiohttp
import click

from virga_cli import errors
from virga_cli.names import resolve
from virga_cli.output import Cli, pass_cli

DETACH = b"\x1d"
"""Ctrl-]: leaves the console, as in `virsh console` and telnet."""


@contextlib.contextmanager
def raw_terminal(stream: IO[Any]) -> Iterator[None]:
    """`stream`'s terminal in raw mode while inside, restored after; nothing if no terminal."""
    try:
        fd = stream.fileno()
        is_tty = os.isatty(fd)
    except (AttributeError, OSError, io.UnsupportedOperation):
        is_tty = False
    if not is_tty:
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _chunks(stream: IO[bytes]) -> Callable[[], bytes]:
    """A blocking read of what is there (b"" at the end)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        read1 = getattr(stream, "read1", None)
        return (lambda: read1(4096)) if read1 is not None else (lambda: stream.read(1))
    return lambda: os.read(fd, 4096)


async def relay(url: str, stdin: IO[bytes], stdout: IO[bytes]) -> str:
    """Relay until detached; returns why it ended (`detached`, `end of input`, `closed`)."""
    loop = asyncio.get_running_loop()
    typed: asyncio.Queue[bytes] = asyncio.Queue()
    read = _chunks(stdin)

    def reading() -> None:  # a daemon thread: a blocked read must not keep the CLI alive
        while True:
            try:
                data = read()
            except OSError:
                data = b""
            try:
                loop.call_soon_threadsafe(typed.put_nowait, data)
            except RuntimeError:  # detached meanwhile: the loop is gone
                return
            if not data:
                return

    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(url)
        except aiohttp.WSServerHandshakeError as exc:
            raise errors.CliFailure(
                f"HTTP {exc.status}: the console was refused ({exc.message})",
                errors.exit_code_for(exc.status),
            ) from None
        except aiohttp.ClientError as exc:
            raise errors.CliFailure(
                f"cannot reach the console: {exc}", errors.UNREACHABLE
            ) from None
        threading.Thread(target=reading, name="console-stdin", daemon=True).start()

        async def inward() -> str:
            while data := await typed.get():
                if DETACH in data:
                    before = data.split(DETACH, 1)[0]
                    if before:
                        await ws.send_bytes(before)
                    return "detached"
                await ws.send_bytes(data)
            return "end of input"

        async def outward() -> str:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY:
                    stdout.write(message.data)
                    stdout.flush()
            return "closed"

        tasks = [asyncio.create_task(inward()), asyncio.create_task(outward())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            why = done.pop().result()
            if why == "end of input":  # what was typed last may still be answered
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(tasks[1]), 1.0)
            return why
        finally:
            for task in tasks:
                task.cancel()
            await ws.close()


@click.command("console-log")
@click.argument("instance_id")
@click.option("--lines", "-n", type=click.IntRange(1, 10_000), default=100, show_default=True)
@pass_cli
def instance_console_log(cli: Cli, instance_id: str, lines: int) -> None:
    """The last lines of the instance's serial output (by id or name), as its host keeps it."""
    client = cli.client()
    instance_id = resolve(client, "instance", instance_id)
    found = client.get(f"/v1/instances/{instance_id}/console-log", lines=str(lines))
    cli.emit(found, lambda log: click.echo("\n".join(log["lines"])))


@click.command("console")
@click.argument("instance_id")
@pass_cli
def instance_console(cli: Cli, instance_id: str) -> None:
    """Attach this terminal to the instance's serial console (by id or name); Ctrl-] detaches.

    The terminal is raw while attached (Ctrl-C goes to the guest); a later session, yours or
    an admin's, takes the console over and ends this one."""
    client = cli.client()
    instance_id = resolve(client, "instance", instance_id)
    ticket = client.post(f"/v1/instances/{instance_id}/console")
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    cli.err.print(f"Connected to the console of {instance_id}; detach with Ctrl-]")
    with raw_terminal(sys.stdin):
        why = asyncio.run(relay(ticket["url"], stdin, stdout))
    cli.err.print(f"\nconsole {why}")
