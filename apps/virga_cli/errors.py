"""The CLI's failures and their exit codes, one code per kind so scripts can branch on them."""

from __future__ import annotations

from typing import Any

import click

OK = 0
API_ERROR = 1
"""The API refused the request (a 4xx other than 401/403): its problem names the field."""
USAGE = 2
"""Bad command line (click's own code for usage errors)."""
UNREACHABLE = 3
"""No answer from the API: connection refused, unknown host, timeout."""
AUTH = 4
"""No token, or the API answered 401/403."""
SERVER_ERROR = 5
"""The API answered 5xx (503 while the gateway catches up with the log)."""
FAILED = 6
"""`--wait` saw the resource go to ERROR; its fault is printed."""
TIMEOUT = 7
"""`--wait` gave up before the resource settled."""

EXIT_CODES = {
    OK: "success",
    API_ERROR: "the API refused the request (4xx); the message names the field",
    USAGE: "bad command line",
    UNREACHABLE: "the API could not be reached",
    AUTH: "no token, or the token was refused (401/403)",
    SERVER_ERROR: "the API failed (5xx)",
    FAILED: "--wait: the resource went to ERROR",
    TIMEOUT: "--wait: gave up waiting",
}


class CliFailure(Exception):
    """A failure that ends the command with its own exit code and a message on stderr."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class Group(click.Group):
    """The root group: turns a CliFailure into its message on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliFailure as failure:
            click.echo(f"error: {failure.message}", err=True)
            raise click.exceptions.Exit(failure.exit_code) from None


class ApiProblem(CliFailure):
    """An HTTP error answer, carrying its RFC 9457 problem (or what stood in for one)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(describe_problem(status, problem), exit_code_for(status))


def exit_code_for(status: int) -> int:
    if status in (401, 403):
        return AUTH
    if status >= 500:
        return SERVER_ERROR
    return API_ERROR


def describe_problem(status: int, problem: dict[str, Any]) -> str:
    """One line per fact: `HTTP 422 The request is not valid: flavor: no flavor named m9`."""
    title = problem.get("title") or "error"
    detail = problem.get("detail")
    lines = [f"HTTP {status} {title}" + (f": {detail}" if detail else "")]
    for error in problem.get("errors") or []:
        if isinstance(error, dict):
            lines.append(f"  field {error.get('field')}: {error.get('message')}")
    if problem.get("correlation_id"):
        lines.append(f"  (request {problem['correlation_id']})")
    return "\n".join(lines)
