"""`virga audit`: read-only audits of the log (hash chains, causal traces, past states,
re-rated invoices, cross-service invariants)."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click
import orjson

from virga_eventlog import KafkaSettings
from virga_events import encode

F = TypeVar("F", bound=Callable[..., Any])

REPLAYABLE_SERVICES = ("gateway", "scheduler", "compute", "storage", "network", "billing")
"""As `virga_audit.REPLAYABLE` (not imported here: the CLI loads services only when asked)."""


def _kafka_options(command: F) -> F:
    command = click.option(
        "--namespace",
        envvar="VIRGA_NAMESPACE",
        default="virga",
        show_default=True,
        help="Topic namespace (env VIRGA_NAMESPACE).",
    )(command)
    return click.option(
        "--bootstrap",
        envvar="VIRGA_KAFKA_BOOTSTRAP",
        default="127.0.0.1:9092",
        show_default=True,
        help="Kafka bootstrap servers (env VIRGA_KAFKA_BOOTSTRAP).",
    )(command)


def _settings(bootstrap: str, namespace: str) -> KafkaSettings:
    # SASL/TLS settings still come from the environment, as for every Virga process.
    return dataclasses.replace(
        KafkaSettings.from_env(client_id="virga-audit"),
        bootstrap_servers=bootstrap,
        namespace=namespace,
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple) and hasattr(value, "_asdict"):  # RecordLocation
        return value._asdict()
    raise TypeError(f"cannot encode {type(value).__name__}")


def _print_json(value: Any) -> None:
    document = orjson.dumps(value, default=_json_default, option=orjson.OPT_INDENT_2)
    sys.stdout.buffer.write(document + b"\n")


@click.group()
def audit() -> None:
    """Audit the log: chains, traces, past states, invoices, invariants (read-only)."""


@audit.command("verify")
@_kafka_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def audit_verify(bootstrap: str, namespace: str, as_json: bool) -> None:
    """Check every producer's hash chain; exit 1 when a record was altered, removed,
    duplicated or forged, or does not decode."""
    from virga_audit import verify

    report = asyncio.run(verify(_settings(bootstrap, namespace)))
    if as_json:
        _print_json({**dataclasses.asdict(report), "ok": report.ok})
    else:
        click.echo(f"{report.records} records, {len(report.producers)} producers")
        if not report.records:
            click.echo(f"warning: namespace {namespace!r} holds no events", err=True)
        for summary in report.producers:
            click.echo(
                f"  {summary.producer}: {summary.events} events, chain to seq {summary.last_seq}"
            )
        for problem in report.problems:
            against = f" (against {problem.related})" if problem.related else ""
            click.echo(f"{problem.kind.upper()} {problem.producer}: {problem.detail}{against}")
        for bad in report.undecodable:
            click.echo(f"UNDECODABLE {bad.location}: {bad.reason}")
        click.echo("chains intact" if report.ok else "the log does not verify")
    sys.exit(0 if report.ok else 1)


@audit.command("trace")
@_kafka_options
@click.argument("resource_id")
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON envelopes.")
def audit_trace(bootstrap: str, namespace: str, resource_id: str, as_json: bool) -> None:
    """Every event about RESOURCE_ID and the causal trees of the requests that touched it."""
    from virga_audit import trace

    events = asyncio.run(trace(_settings(bootstrap, namespace), resource_id))
    if as_json:
        _print_json([orjson.loads(encode(e)) for e in events])
        return
    rows = [
        (
            e.occurred_at.astimezone(UTC).isoformat(timespec="milliseconds"),
            e.producer,
            e.type,
            e.event_id,
            e.causation_id or "-",
        )
        for e in events
    ]
    header = ("time", "producer", "type", "event_id", "causation_id")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def _instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@audit.command("replay")
@_kafka_options
@click.option("--until", "until", required=True, help="ISO 8601 instant; without a zone it is UTC.")
@click.option(
    "--service",
    type=click.Choice([*REPLAYABLE_SERVICES, "all"]),
    default="scheduler",
    show_default=True,
    help="One service, or all of them (compute: every registered host).",
)
@click.option("--host", help="The compute agent's host (with --service compute).")
@click.option("--json", "as_json", is_flag=True, help="Accepted: the state is JSON already.")
def audit_replay(
    bootstrap: str, namespace: str, until: str, service: str, host: str | None, as_json: bool
) -> None:
    """Print SERVICE's state as of --until, folded from the log by the service's own code."""
    from virga_audit import UnknownService, replay, replay_all

    moment = _instant(until)
    settings = _settings(bootstrap, namespace)
    if service == "all":
        _print_json(asyncio.run(replay_all(settings, moment)))
        return
    try:
        state = asyncio.run(replay(settings, service, moment, host))
    except UnknownService as exc:
        raise click.UsageError(str(exc)) from None
    # The gateway's snapshot is already a JSON document: embed it rather than quote it.
    _print_json(orjson.loads(state) if isinstance(state, str) else state)


@audit.command("rerate")
@_kafka_options
@click.option("--period", required=True, help="The month to re-rate, YYYY-MM (UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
def audit_rerate(bootstrap: str, namespace: str, period: str, as_json: bool) -> None:
    """Recompute PERIOD's invoices from raw events with billing's own fold and rating, and
    print every difference from what was issued (and adjusted since); exit 1 when any."""
    from virga_audit import rerate
    from virga_rating.rating import bounds

    try:
        bounds(period)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None
    differences = asyncio.run(rerate(_settings(bootstrap, namespace), period))
    if as_json:
        _print_json({"period": period, "differences": [str(d) for d in differences]})
        sys.exit(1 if differences else 0)
    for difference in differences:
        click.echo(f"DIFFERENT {difference}")
    click.echo(f"{len(differences)} differences" if differences else "invoices match the log")
    sys.exit(1 if differences else 0)


@audit.command("check")
@_kafka_options
@click.option("--at", "at", help="ISO 8601 instant to check as of (default: now).")
@click.option(
    "--stuck-after",
    type=click.FloatRange(min=0),
    default=900.0,
    show_default=True,
    help="Seconds an instance may stay BUILDING or DELETING without a new fact about it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the violations as JSON.")
def audit_check(
    bootstrap: str, namespace: str, at: str | None, stuck_after: float, as_json: bool
) -> None:
    """Cross-service invariants from a replay of every topic: hosts within their allocation
    ratios, no IP or MAC twice in a network, running instances with their boot volume and
    port, no orphaned volume or port, nothing stuck. One line per violation; exit 1 if any."""
    from virga_audit import check

    moment = _instant(at) if at is not None else datetime.now(UTC)
    violations = asyncio.run(
        check(_settings(bootstrap, namespace), moment, timedelta(seconds=stuck_after))
    )
    if as_json:
        _print_json({"at": moment.isoformat(), "violations": [str(v) for v in violations]})
        sys.exit(1 if violations else 0)
    for violation in violations:
        click.echo(f"VIOLATION {violation}")
    click.echo(f"{len(violations)} violations" if violations else "all invariants hold")
    sys.exit(1 if violations else 0)
