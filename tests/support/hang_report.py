"""Say where a test hangs: shortly before pytest-timeout fails a test, print every thread's
stack and every pending asyncio task's stack to the test's captured stderr.

pytest-timeout's own report shows only the main thread, which an asyncio test always shows
waiting in `select`; the task stuck on an `await` is what a reader needs. Registered by
tests/conftest.py through pytest-timeout's timer hooks.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import traceback
from typing import Any

import pytest

LEAD_SECONDS = 10.0  # how long before the timeout the report is printed
_timers: dict[str, threading.Timer] = {}
noted: list[str] = []
"""Reports of hangs a test survived (a serve loop killed at its stop), for the session's
summary (tests/conftest.py), so that a passing run still shows them."""


def note(title: str) -> None:
    """Keep a report (`report`) for the session's summary, and print it to the test's output."""
    text = report(title)
    noted.append(text)
    sys.stderr.write(text)


def report(title: str) -> str:
    """Every thread's stack, then every pending task's, as text."""
    lines = [f"==== {title} ===="]
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        lines.append(f"-- thread {names.get(ident, ident)}")
        lines.extend(traceback.format_stack(frame))
    tasks = [o for o in gc.get_objects() if isinstance(o, asyncio.Task) and not o.done()]
    for task in tasks:
        lines.append(f"-- task {task.get_name()} {task.get_coro()!r}")
        for frame in task.get_stack():
            lines.extend(traceback.format_stack(frame, limit=1))
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _print(nodeid: str) -> None:
    sys.stderr.write(report(f"{nodeid}: still running {LEAD_SECONDS:.0f} s before its timeout"))
    sys.stderr.flush()


def arm(item: pytest.Item, settings: Any) -> None:
    timeout = float(getattr(settings, "timeout", 0) or 0)
    if timeout <= LEAD_SECONDS * 2:
        return
    timer = threading.Timer(timeout - LEAD_SECONDS, _print, args=(item.nodeid,))
    timer.daemon = True
    timer.start()
    _timers[item.nodeid] = timer


def disarm(item: pytest.Item) -> None:
    timer = _timers.pop(item.nodeid, None)
    if timer is not None:
        timer.cancel()
