"""How a write request is carried out: read and validate its body, honour its
Idempotency-Key, decide, append its events in one transaction, answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from virga_events.catalog import api
from virga_gateway.context import Call
from virga_gateway.idempotency import (
    HEADER,
    IDEMPOTENCY_TTL_SECONDS,
    IdempotencyRecord,
    fingerprint,
    parse_key,
    record_id,
)
from virga_gateway.outcome import Outcome
from virga_gateway.preview import preview
from virga_gateway.problems import Problem, invalid, log_unavailable, tenant_deleted
from virga_gateway.quotas.enforce import growing_owners, limited, over_quota, quota_increase
from virga_gateway.runner import LogUnavailable
from virga_gateway.state import GatewayState
from virga_gateway.validation import parse_json, validate
from virga_runtime import Emit

B = TypeVar("B", bound=msgspec.Struct)
Plan = Callable[[GatewayState, datetime], Outcome]
Reveal = Callable[[dict[str, Any]], dict[str, Any]]
"""Puts back into a replayed body the secrets that were never stored (a token)."""

JSON = "application/json"


async def read_body(
    request: web.Request, body_type: type[B], *, optional: bool = False
) -> tuple[B, object]:
    """The validated body and its raw JSON value; 415, 413, 400 or 422 problems otherwise."""
    if optional and not request.body_exists:
        value: object = {}
    else:
        content_type = request.content_type
        if content_type != JSON and not content_type.endswith("+json"):
            raise Problem(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                f"the body must be {JSON}, not {content_type or 'untyped'}",
                headers={"Accept-Post": JSON},
            )
        value = parse_json(await request.read())  # over the size limit: HTTP 413
    return validate(value, body_type), value


async def commit(
    request: web.Request,
    call: Call,
    plan: Plan,
    *,
    body: object = None,
    guard: str | None = None,
    reveal: Reveal | None = None,
    excluding: str | None = None,
) -> web.Response:
    """Decide with `plan` and append its events; replay the first answer to a repeated key.

    `guard` serializes requests that decide on the same thing (one instance, one name), so
    two concurrent requests cannot both pass a check that only one of them may pass.
    `excluding` names a tenant no request may give anything to meanwhile (its deletion).

    Once its events are handed to the log, the answer waits for it at most
    `write_timeout_seconds`, then is a 503 with Retry-After. The work goes on without its
    caller and keeps holding its locks until the log has confirmed or refused the events: no
    later request, a retry with the same key above all, decides on a state that lacks events
    which may yet commit. (Waiting for those locks is bounded too: a holder's write is
    confirmed or refused within the timeout, and once one is refused every write is refused
    at once until the gateway has settled it against the log.)
    """
    gateway = call.gateway
    key = parse_key(request.headers.get(HEADER)) if request.method == "POST" else None
    handed = asyncio.Event()
    locks = (guard, excluding)
    work = asyncio.ensure_future(_commit(request, call, plan, key, body, locks, reveal, handed))
    work.add_done_callback(_retrieved)
    handing = asyncio.ensure_future(handed.wait())
    try:
        await asyncio.wait({work, handing}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        handing.cancel()
    try:
        return await asyncio.wait_for(asyncio.shield(work), gateway.config.write_timeout_seconds)
    except TimeoutError:
        raise log_unavailable(gateway.config.retry_after_seconds) from None


def _retrieved(work: asyncio.Future[web.Response]) -> None:
    """Collect the outcome of work whose caller may have stopped waiting (answered 503)."""
    if not work.cancelled():
        work.exception()


async def _commit(
    request: web.Request,
    call: Call,
    plan: Plan,
    key: str | None,
    body: object,
    locks: tuple[str | None, str | None],
    reveal: Reveal | None,
    handed: asyncio.Event,
) -> web.Response:
    gateway = call.gateway
    guard, excluding = locks
    if key is None:
        async with gateway.locks.hold(guard), gateway.gates.exclusive(excluding):
            return await _decide_and_append(call, plan, None, handed)
    scope = call.caller.scope
    recording = _Recording(
        aggregate_id=record_id(scope, key),
        key=key,
        scope=scope,
        method_path=f"{request.method} {request.path}",
        request_sha256=fingerprint(body),
    )
    # Concurrent retries of one key queue here: the first decides, the others replay it.
    async with gateway.locks.hold("idempotency " + recording.aggregate_id):
        previous = gateway.state.idempotency.get(recording.aggregate_id)
        if previous is not None and _fresh(previous):
            if (previous.method_path, previous.request_sha256) != (
                recording.method_path,
                recording.request_sha256,
            ):
                raise invalid(422, HEADER, "was already used for a different request")
            return _replay(previous, reveal)
        async with gateway.locks.hold(guard), gateway.gates.exclusive(excluding):
            return await _decide_and_append(call, plan, recording, handed)


@dataclass(frozen=True, slots=True)
class _Recording:
    aggregate_id: str
    key: str
    scope: str
    method_path: str
    request_sha256: str


async def _decide_and_append(
    call: Call, plan: Plan, recording: _Recording | None, handed: asyncio.Event
) -> web.Response:
    gateway = call.gateway
    now = datetime.now(UTC)
    outcome, after = _decide(gateway.state, plan, now, call.correlation_id)
    owners = growing_owners(gateway.state, after, outcome.emits)
    if not owners:  # gives no tenant anything: nothing to wait for
        return await _append(call, outcome, after, now, recording, handed)
    # A request that gives a tenant something passes its tenant's gate with the others, never
    # with the tenant's deletion (`gates.py`), and decides again there if anything was folded
    # meanwhile: a deletion that went first is then in the state.
    while True:
        folded = gateway.runner.events_applied
        async with gateway.gates.shared(owners):
            if gateway.runner.events_applied != folded:
                outcome, after = _decide(gateway.state, plan, now, call.correlation_id)
            wanted = growing_owners(gateway.state, after, outcome.emits)
            if wanted <= owners:
                if any(tenant_id in gateway.state.deleted_tenants for tenant_id in wanted):
                    raise tenant_deleted()
                return await _within_limits(call, plan, now, recording, handed, outcome, after)
        owners |= wanted


async def _within_limits(
    call: Call,
    plan: Plan,
    now: datetime,
    recording: _Recording | None,
    handed: asyncio.Event,
    outcome: Outcome,
    after: GatewayState,
) -> web.Response:
    gateway = call.gateway
    grown = limited(gateway.state, quota_increase(gateway.state, after, outcome.emits))
    if not grown:  # takes nothing a limit bounds: no need to queue
        return await _append(call, outcome, after, now, recording, handed)
    # Requests that take from a tenant's quotas queue per tenant, and decide again once it
    # is their turn: the state then holds every earlier request's events, so two concurrent
    # requests can never both take the last unit.
    async with AsyncExitStack() as held:
        for tenant_id in sorted(grown):
            await held.enter_async_context(gateway.locks.hold("quota " + tenant_id))
        outcome, after = _decide(gateway.state, plan, now, call.correlation_id)
        problem = over_quota(gateway.state, quota_increase(gateway.state, after, outcome.emits))
        if problem is not None:
            raise problem
        return await _append(call, outcome, after, now, recording, handed)


def _decide(
    state: GatewayState, plan: Plan, now: datetime, correlation_id: str
) -> tuple[Outcome, GatewayState]:
    """The plan's outcome and the state as it will be once its events are folded."""
    outcome = plan(state, now)
    return outcome, preview(state, outcome.emits, now, correlation_id)


async def _append(
    call: Call,
    outcome: Outcome,
    after: GatewayState,
    now: datetime,
    recording: _Recording | None,
    handed: asyncio.Event,
) -> web.Response:
    gateway = call.gateway
    # While a transaction is in doubt the projection may lack events that are yet to commit:
    # decide nothing on it.
    if gateway.runner.recovering:
        raise log_unavailable(gateway.config.retry_after_seconds)
    body = None if outcome.view is None else msgspec.json.encode(outcome.view(after))
    emits = [Emit(e.payload, e.aggregate_id, e.tenant_id, occurred_at=now) for e in outcome.emits]
    if recording is not None:
        record = api.IdempotentRequestRecorded(
            key=recording.key,
            principal=recording.scope,
            method_path=recording.method_path,
            request_sha256=recording.request_sha256,
            status=outcome.status,
            body=_stored(body, outcome.secret_fields),
        )
        emits.append(Emit(record, recording.aggregate_id, call.caller.tenant_id, now))
    if emits:
        handed.set()  # the caller now waits for the log, within its write timeout
        try:
            await gateway.runner.append(emits, correlation_id=call.correlation_id)
        except LogUnavailable:
            raise log_unavailable(gateway.config.retry_after_seconds) from None
    return _respond(outcome.status, body)


def _stored(body: bytes | None, secret_fields: frozenset[str]) -> str:
    if body is None:
        return ""
    if not secret_fields:
        return body.decode()
    value = msgspec.json.decode(body)
    return msgspec.json.encode({k: v for k, v in value.items() if k not in secret_fields}).decode()


def _fresh(record: IdempotencyRecord) -> bool:
    age = datetime.now(UTC) - record.recorded_at
    return age < timedelta(seconds=IDEMPOTENCY_TTL_SECONDS)


def _replay(record: IdempotencyRecord, reveal: Reveal | None) -> web.Response:
    body = record.body.encode() if record.body else None
    if body is not None and reveal is not None:
        body = msgspec.json.encode(reveal(msgspec.json.decode(body)))
    response = _respond(record.status, body)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _respond(status: int, body: bytes | None) -> web.Response:
    if body is None:
        return web.Response(status=status)
    return web.Response(status=status, body=body, content_type=JSON)
