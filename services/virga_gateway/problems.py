"""RFC 9457 problem details: the one shape every 4xx and 5xx answer of the API takes."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import msgspec

PROBLEM_TYPE_BASE = "https://virga.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class FieldError(msgspec.Struct, frozen=True):
    """What is wrong with one field of the request."""

    field: str
    """The field's name as the client sent it (`name`, `flavor`, `cursor`, `Idempotency-Key`)."""
    message: str


class ProblemDetails(msgspec.Struct, frozen=True, omit_defaults=True):
    """An error response (RFC 9457), served as application/problem+json."""

    type: str
    """A URI naming the kind of problem; stable, for programs to branch on."""
    title: str
    """A short summary of that kind of problem, the same for every occurrence."""
    status: int
    """The HTTP status code."""
    detail: str
    """What went wrong with this request, for a human."""
    instance: str | None = None
    """The request path."""
    correlation_id: str | None = None
    """The request's id (also in the X-Request-Id header): quote it when reporting a fault."""
    errors: list[FieldError] | None = None
    """One entry per offending field, for validation problems."""


_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.@+-]+/)+[\w.@+-]*")


def without_paths(text: str) -> str:
    """`text` with every absolute file path cut to its last part: another service's reason
    may name its own files, which are none of the caller's business."""
    return _PATH.sub(lambda found: found.group(0).rstrip("/").rsplit("/", 1)[-1] or "…", text)


class Problem(Exception):
    """Raised anywhere in request handling; rendered as problem+json by the middleware."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})

    def details(self, instance: str | None, correlation_id: str | None) -> ProblemDetails:
        return ProblemDetails(
            type=PROBLEM_TYPE_BASE + self.slug,
            title=self.title,
            status=self.status,
            detail=self.detail,
            instance=instance,
            correlation_id=correlation_id,
            errors=self.errors or None,
        )


def invalid(status: int, field: str, message: str) -> Problem:
    """A request some field of which is wrong (400 for syntax, 422 for meaning)."""
    return Problem(
        status,
        "invalid-request" if status == 400 else "validation-failed",
        "Bad request" if status == 400 else "The request is not valid",
        f"{field}: {message}",
        errors=[FieldError(field, message)],
    )


def invalid_fields(errors: Sequence[FieldError]) -> Problem:
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return Problem(422, "validation-failed", "The request is not valid", detail, errors=errors)


def not_found(kind: str, identifier: str) -> Problem:
    return Problem(404, "not-found", "Not found", f"{kind} {identifier} does not exist")


def conflict(detail: str, field: str | None = None) -> Problem:
    errors = [FieldError(field, detail)] if field else []
    return Problem(409, "conflict", "Conflict with the current state", detail, errors=errors)


def unauthorized(detail: str) -> Problem:
    return Problem(
        401,
        "unauthorized",
        "Authentication required",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="virga"'},
    )


def forbidden(detail: str) -> Problem:
    return Problem(403, "forbidden", "Forbidden", detail)


def tenant_disabled() -> Problem:
    """A genuine token of a tenant an admin disabled: a 401 like every refused token, but
    saying why, which tells nothing to anyone but the holder of that genuine token."""
    return unauthorized("the tenant is disabled; an administrator can enable it again")


def tenant_deleted() -> Problem:
    """A genuine token of a tenant an admin deleted: a 401 like every refused token."""
    return unauthorized("the tenant was deleted")


def not_ready(retry_after_seconds: int) -> Problem:
    return Problem(
        503,
        "not-ready",
        "Service unavailable",
        "the gateway is still catching up with the event log; retry shortly",
        headers={"Retry-After": str(retry_after_seconds)},
    )


def log_unavailable(retry_after_seconds: int) -> Problem:
    """A write the event log did not confirm in time: it may still commit, or never."""
    return Problem(
        503,
        "log-unavailable",
        "Service unavailable",
        "the event log did not confirm this write in time; it may still take effect: retry "
        "with the same Idempotency-Key, which is always safe",
        headers={"Retry-After": str(retry_after_seconds)},
    )


def internal_error() -> Problem:
    return Problem(
        500,
        "internal-error",
        "Internal server error",
        "an unexpected error occurred; it was logged under this request's correlation_id",
    )
