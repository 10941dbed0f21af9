"""How commands print: rich tables for people, the API's own JSON for scripts (`--json`)."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

import click
import orjson
from rich.console import Console
from rich.table import Table

from virga_cli import config, errors
from virga_cli.client import Client

Cell = Callable[[dict[str, Any]], Any]
Column = tuple[str, str | Cell]
"""A header and a key of the item (dotted for nested fields) or a function of it."""


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # Piped output is not cut at 80 columns: ids are 36 characters and scripts grep them.
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "200"))
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


@dataclass
class Cli:
    """What every command gets: where the API is, how to print."""

    api: str
    as_json: bool
    out: Console = field(default_factory=_console)
    err: Console = field(default_factory=lambda: _console(stderr=True))

    def client(self, *, token_required: bool = True) -> Client:
        token = config.resolve_token()
        if token_required and not token:
            raise errors.CliFailure(
                "not logged in: run `virga login --token TOKEN` or set VIRGA_TOKEN", errors.AUTH
            )
        return Client(self.api, token)

    def emit(self, data: Any, human: Callable[[Any], None]) -> None:
        """The API's answer as JSON with --json, else as `human` renders it."""
        if self.as_json:
            print_json(data)
        else:
            human(data)

    def table(self, items: Sequence[dict[str, Any]], columns: Sequence[Column]) -> None:
        if not items:
            self.err.print("(none)")
            return
        self.out.print(render_table(items, columns))

    def record(self, item: dict[str, Any], fields: Sequence[Column]) -> None:
        grid = Table(show_header=False, box=None, pad_edge=False)
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        for header, key in fields:
            grid.add_row(header, text(cell(item, key)))
        self.out.print(grid)


_pass_cli = click.make_pass_decorator(Cli)

Command = TypeVar("Command", bound=Callable[..., Any])


def pass_cli(command: Command) -> Command:
    """Pass the `Cli` to `command`, which also takes `--json` after its own name
    (`virga instance list --json` as well as `virga --json instance list`)."""

    def with_cli(cli: Cli, /, *args: Any, json_output: bool, **kwargs: Any) -> Any:
        if json_output:
            cli.as_json = True
        return command(cli, *args, **kwargs)

    functools.update_wrapper(with_cli, command)
    json_flag = click.option(
        "--json", "json_output", is_flag=True, help="Print the API's JSON, for scripts."
    )
    return cast(Command, json_flag(_pass_cli(with_cli)))


def print_json(data: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def cell(item: dict[str, Any], key: str | Cell) -> Any:
    if callable(key):
        return key(item)
    value: Any = item
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def text(value: Any) -> str:
    """A cell as people read it: '-' for nothing, lists joined, times without microseconds."""
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={text(v)}" for k, v in value.items())
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        return when(value)
    return str(value)


def when(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def render_table(items: Sequence[dict[str, Any]], columns: Sequence[Column]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for header, _ in columns:
        # Ids must stay whole to be copied; other cells may fold.
        table.add_column(header.upper(), no_wrap=header in ("id", "name"), overflow="fold")
    for item in items:
        table.add_row(*(text(cell(item, key)) for _, key in columns))
    return table
