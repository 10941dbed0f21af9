"""The web console's files, served at `/` from a built directory (`GatewayConfig.web_root`).

Same origin as the API, so the page needs no CORS and its token never leaves for elsewhere.
Only `index.html` (at `/`) and the build's `assets/` are served, by name (no path walks);
index.html is never cached (it names the assets of the current build), assets, whose names
carry their content's hash, for a year. Every answer forbids inline script and style and
anything from another origin (CSP), content sniffing, framing and referrers.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from virga_gateway.problems import Problem

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SAFE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
INDEX_PATH, ASSET_PATH = "/", "/assets/{name}"
"""The web console's routes: not the API's (absent from its OpenAPI document)."""
_ASSET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}


def add_web_routes(app: web.Application, root: Path | None) -> None:
    async def index(request: web.Request) -> web.StreamResponse:
        page = root / "index.html" if root is not None else None
        if page is None or not page.is_file():
            raise _absent("the web console is not built (make up builds it into web/dist)")
        headers = {**SAFE_HEADERS, "Cache-Control": "no-store"}
        return web.Response(
            body=page.read_bytes(), content_type="text/html", charset="utf-8", headers=headers
        )

    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        kind = _TYPES.get(Path(name).suffix)
        path = root / "assets" / name if root is not None else None
        if kind is None or not _ASSET.match(name) or path is None or not path.is_file():
            raise _absent(f"no asset {name}")
        headers = {**SAFE_HEADERS, "Cache-Control": "public, max-age=31536000, immutable"}
        return web.Response(body=path.read_bytes(), content_type=kind, headers=headers)

    app.router.add_get(INDEX_PATH, index)
    app.router.add_get(ASSET_PATH, asset)


def _absent(detail: str) -> Problem:
    return Problem(404, "not-found", "Not Found", detail)
