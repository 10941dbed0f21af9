"""Following an instance's history as it is written: `create --wait` and `events tail`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from rich.console import Console

from virga_cli import errors
from virga_cli.client import Client
from virga_cli.output import when

SUMMARY_CHARS = 110


def summary(payload: Any) -> str:
    """The payload on one line: scalars as k=v, a nested record by its name."""
    if not isinstance(payload, dict):
        return ""
    parts: list[str] = []
    for key, value in payload.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, dict):
            value = value.get("name") or value.get("id")
            if value is None:
                continue
        elif isinstance(value, list):
            if not all(isinstance(v, str | int | float) for v in value):
                continue
            value = ",".join(str(v) for v in value)
        parts.append(f"{key}={value}")
    line = " ".join(parts)
    return line if len(line) <= SUMMARY_CHARS else line[: SUMMARY_CHARS - 1] + "…"


def event_line(event: dict[str, Any]) -> str:
    return (
        f"{when(str(event.get('occurred_at', '')))}  {event.get('producer', '?'):<14} "
        f"{event.get('type', '?'):<26} {summary(event.get('payload'))}"
    ).rstrip()


def history(client: Client, instance_id: str) -> list[dict[str, Any]]:
    answer = client.get(f"/v1/instances/{instance_id}/events")
    items = answer.get("items", []) if isinstance(answer, dict) else answer
    return [e for e in items if isinstance(e, dict)]


class Printer:
    """Prints each event once, however many times a poll returns it."""

    def __init__(self, console: Console, prefix: Callable[[dict[str, Any]], str] | None = None):
        self.console = console
        self.prefix = prefix
        self.seen: set[str] = set()

    def show(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            event_id = str(event.get("event_id"))
            if event_id in self.seen:
                continue
            self.seen.add(event_id)
            prefix = self.prefix(event) if self.prefix else ""
            self.console.print(prefix + event_line(event), markup=False)


def wait_for(
    client: Client,
    instance_id: str,
    printer: Printer,
    *,
    targets: set[str],
    timeout: float,
    interval: float = 0.5,
) -> dict[str, Any]:
    """Print the instance's events until its status is one of `targets`; its final view.

    ERROR ends the wait with its fault (exit FAILED); so does running out of time (TIMEOUT).
    """
    deadline = time.monotonic() + timeout
    while True:
        # Status first, then events: the events answered include whatever settled it.
        instance: dict[str, Any] = client.get(f"/v1/instances/{instance_id}")
        printer.show(history(client, instance_id))
        status = instance.get("status")
        if status in targets:
            return instance
        if status == "ERROR":
            raise errors.CliFailure(
                f"instance {instance.get('name')} ({instance_id}) went to ERROR: "
                f"{instance.get('fault') or 'no fault recorded'}",
                errors.FAILED,
            )
        if time.monotonic() > deadline:
            raise errors.CliFailure(
                f"instance {instance_id} is still {status} after {timeout:g} s "
                f"(fault: {instance.get('fault') or 'none'}); `virga events tail {instance_id}` "
                "follows it",
                errors.TIMEOUT,
            )
        time.sleep(interval)


FLOW_ENDS = frozenset({"FlowCompleted", "FlowFailed"})
"""A flow's last events (live migration, evacuation, resize), in its instance's history."""


def wait_flow_end(
    client: Client,
    instance_id: str,
    printer: Printer,
    timeout: float,
    *,
    doing: str,
    failed: Callable[[dict[str, Any], str], str],
    interval: float = 0.5,
) -> dict[str, Any]:
    """Print the instance's new events until the flow running on it ends; its final view.
    A failed flow is a CliFailure (FAILED) saying `failed(view, reason)`; past `timeout`, one
    (TIMEOUT) saying the instance is still `doing`."""
    deadline = time.monotonic() + timeout
    while True:
        events = history(client, instance_id)
        fresh = [e for e in events if str(e.get("event_id")) not in printer.seen]
        printer.show(events)
        ended = [e for e in fresh if e.get("type") in FLOW_ENDS]
        if ended:
            instance: dict[str, Any] = client.get(f"/v1/instances/{instance_id}")
            if ended[-1]["type"] == "FlowFailed":
                reason = ended[-1].get("payload", {}).get("reason", "no reason recorded")
                raise errors.CliFailure(failed(instance, reason), errors.FAILED)
            return instance
        if time.monotonic() > deadline:
            raise errors.CliFailure(
                f"instance {instance_id} is still {doing} after {timeout:g} s;"
                f" `virga events tail {instance_id}` follows it",
                errors.TIMEOUT,
            )
        time.sleep(interval)
