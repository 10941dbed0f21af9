"""A small blocking client of Virga's HTTP API: JSON in and out, problems raised as failures.

Every write carries an Idempotency-Key, and a request the gateway answers 503 (the event log
is away, or the gateway is catching up) or that gets no answer is sent again, a few times,
with the same key, after the Retry-After the gateway asked for (else a growing backoff): a
503 write may still have taken effect, and only the same key makes its retry safe.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from virga_cli import errors

TIMEOUT_SECONDS = 30.0
RETRIES = 4
"""Times a request answered 503, or not at all, is sent again before the failure is shown."""
BACKOFF_SECONDS = 0.25
"""The first wait between attempts when the gateway gave no Retry-After; doubled each time."""
MAX_WAIT_SECONDS = 10.0
"""The longest wait between two attempts, whatever Retry-After says."""
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
IDEMPOTENCY_KEY = "Idempotency-Key"


class Client:
    """Talks to one gateway with one token (None: only public routes work)."""

    def __init__(
        self,
        api: str,
        token: str | None,
        *,
        timeout: float = TIMEOUT_SECONDS,
        retries: int = RETRIES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = api.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self._sleep = sleep
        # No proxy for the API: a local gateway reached through a corporate proxy is a
        # surprise nobody wants, and remote APIs are reached directly in practice too.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def url(self, path: str, query: Mapping[str, str | None] | None = None) -> str:
        url = f"{self.api}{path}"
        params = {k: v for k, v in (query or {}).items() if v is not None}
        return f"{url}?{urllib.parse.urlencode(params)}" if params else url

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str | None] | None = None,
        data: Iterable[bytes] | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one request; the decoded JSON answer (None for an empty one).

        A write gets an Idempotency-Key (unless `headers` has one). Answered 503 or not at
        all, the request is sent again with the same key, up to `retries` times; a body given
        as an iterable of chunks (an upload) can be sent only once.
        """
        all_headers = {"Accept": "application/json, application/problem+json"}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            data = orjson.dumps(body)
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        if method in WRITES and not any(k.lower() == "idempotency-key" for k in all_headers):
            all_headers[IDEMPOTENCY_KEY] = f"virga-cli-{uuid.uuid4()}"
        repeatable = data is None or isinstance(data, bytes)
        url = self.url(path, query)
        attempt = 0
        while True:
            request = urllib.request.Request(url, data=data, headers=all_headers, method=method)
            try:
                return self._send(request, timeout or self.timeout)
            except _Retry as retry:
                if not repeatable or attempt >= self.retries:
                    raise retry.failure from None
                wait = retry.after if retry.after is not None else BACKOFF_SECONDS * 2**attempt
                self._sleep(min(wait, MAX_WAIT_SECONDS))
                attempt += 1
            except errors.ApiProblem as problem:
                # A DELETE that may have taken effect on an earlier attempt: gone now is done.
                if method == "DELETE" and attempt > 0 and problem.status == 404:
                    return None
                raise

    def _send(self, request: urllib.request.Request, timeout: float) -> Any:
        """One attempt; `_Retry` when it is worth another."""
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return _decode(response.read())
        except urllib.error.HTTPError as answer:
            with answer:
                raw = answer.read()
            problem = errors.ApiProblem(answer.code, _problem(answer.code, raw))
            if answer.code == 503:
                raise _Retry(problem, _retry_after(answer.headers.get("Retry-After"))) from None
            raise problem from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            failure = errors.CliFailure(
                f"cannot reach the Virga API at {self.api}: {reason} "
                "(set --api or VIRGA_API_URL; `make up` starts a local one)",
                errors.UNREACHABLE,
            )
            raise _Retry(failure, None) from None

    def get(self, path: str, **query: str | None) -> Any:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, {} if body is None else body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def paged(self, path: str, **query: str | None) -> list[Any]:
        """Every item of a listing, following `next` cursors when the route pages."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            page = self.get(path, **query, cursor=cursor)
            if isinstance(page, list):
                return page
            items.extend(page.get("items", []))
            cursor = page.get("next")
            if not cursor:
                return items


class _Retry(Exception):
    """An attempt worth repeating: its failure, shown if no attempt is left, and the wait
    the gateway asked for (seconds; None: the client's own backoff)."""

    def __init__(self, failure: Exception, after: float | None) -> None:
        super().__init__(str(failure))
        self.failure = failure
        self.after = after


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the delay form; an HTTP date is left to the backoff)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _decode(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise errors.CliFailure(
            f"the API answered something that is not JSON: {raw[:200]!r}", errors.SERVER_ERROR
        ) from None


def _problem(status: int, raw: bytes) -> dict[str, Any]:
    """The problem document, or one made up from a body that is not one (a proxy's page)."""
    try:
        problem = orjson.loads(raw)
    except orjson.JSONDecodeError:
        problem = None
    if isinstance(problem, dict):
        return problem
    text = raw.decode("utf-8", "replace").strip()
    return {"title": "error", "detail": text[:300] or None, "status": status}
