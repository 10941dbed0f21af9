"""A small blocking client of Virga's HTTP API: JSON in and out, problems raised as failures."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from virga_cli import errors

TIMEOUT_SECONDS = 30.0


class Client:
    """Talks to one gateway with one token (None: only public routes work)."""

    def __init__(self, api: str, token: str | None, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.api = api.rstrip("/")
        self.token = token
        self.timeout = timeout
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
        """Send one request; the decoded JSON answer (None for an empty one)."""
        all_headers = {"Accept": "application/json, application/problem+json"}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            data = orjson.dumps(body)
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        request = urllib.request.Request(
            self.url(path, query), data=data, headers=all_headers, method=method
        )
        try:
            with self._opener.open(request, timeout=timeout or self.timeout) as response:
                return _decode(response.read())
        except urllib.error.HTTPError as answer:
            with answer:
                raw = answer.read()
            raise errors.ApiProblem(answer.code, _problem(answer.code, raw)) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise errors.CliFailure(
                f"cannot reach the Virga API at {self.api}: {reason} "
                "(set --api or VIRGA_API_URL; `make up` starts a local one)",
                errors.UNREACHABLE,
            ) from None

    def get(self, path: str, **query: str | None) -> Any:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, {} if body is None else body)

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
