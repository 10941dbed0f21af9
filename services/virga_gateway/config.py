"""The gateway's settings: where it listens, its admin token and its token-signing secret."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from virga_runtime.env import Env

DEFAULT_STATE_DIR = Path(".virga")
DEFAULT_WEB_ROOT = Path(__file__).resolve().parents[2] / "web" / "dist"
"""The web console as `make up` builds it (`npm run build` in the repo's web/)."""


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Everything the gateway needs besides Kafka settings; built once, by `from_env` or tests."""

    admin_token: str
    """The bootstrap admin bearer token; only its sha256 reaches the log."""
    token_secret: bytes
    """HMAC key tokens are derived from, so an idempotent retry can re-derive the same token."""
    host: str = "127.0.0.1"
    """Listen address (env VIRGA_GATEWAY_HOST)."""
    port: int = 8080
    """Listen port (env VIRGA_GATEWAY_PORT); 0 picks a free one."""
    max_body_bytes: int = 1024 * 1024
    """Largest request body accepted; larger ones get 413 (env VIRGA_GATEWAY_MAX_BODY_BYTES)."""
    retry_after_seconds: int = 2
    """Retry-After sent with 503 while the projection is still catching up."""
    storage_url: str | None = None
    """The storage service's HTTP address, which image uploads are streamed to (env
    VIRGA_STORAGE_URL); None: uploads answer 503."""
    image_max_bytes: int = 20 << 30
    """Largest image upload accepted (env VIRGA_IMAGE_MAX_BYTES, as the storage service's)."""
    write_timeout_seconds: float = 5.0
    """How long a write waits for the event log to confirm it before answering 503 with
    Retry-After (env VIRGA_GATEWAY_WRITE_TIMEOUT); such a write may still commit later."""
    retention_seconds: int = 3600
    """How long, in event time, a deleted resource stays in the projection before the API
    forgets it (env VIRGA_GATEWAY_RETENTION_SECONDS; see `retention.py`)."""

    console_ticket_seconds: float = 60.0
    """How long a console ticket is valid (env VIRGA_CONSOLE_TICKET_SECONDS): it opens one
    session, within this time."""

    console_log_key: str | None = None
    """The key the compute agents ask of the gateway before they hand it a console log (env
    VIRGA_CONSOLE_LOG_KEY, the same on every agent); None: console logs answer 409."""

    web_root: Path | None = DEFAULT_WEB_ROOT
    """The built web console served at `/` (env VIRGA_GATEWAY_WEB_ROOT; default the repo's
    web/dist); None or a directory without index.html: `/` answers 404."""

    def __repr__(self) -> str:  # never print secrets into logs
        return f"GatewayConfig(host={self.host!r}, port={self.port}, admin_token=***, ...)"

    @classmethod
    def from_env(cls, state_dir: Path = DEFAULT_STATE_DIR) -> GatewayConfig:
        """Read VIRGA_GATEWAY_* settings; secrets come from env, a named file, or `state_dir`."""
        admin_token = _secret(
            "VIRGA_ADMIN_TOKEN",
            state_dir / "admin-token",
            lambda: "virga_" + secrets.token_urlsafe(32),
            "admin token",
        )
        token_secret = _secret(
            "VIRGA_TOKEN_SECRET",
            state_dir / "token-secret",
            lambda: secrets.token_urlsafe(32),
            "token signing secret",
        )
        return cls(
            admin_token=admin_token,
            token_secret=token_secret.encode(),
            host=os.environ.get("VIRGA_GATEWAY_HOST") or "127.0.0.1",
            port=Env().whole("VIRGA_GATEWAY_PORT", 8080),
            max_body_bytes=Env().whole("VIRGA_GATEWAY_MAX_BODY_BYTES", 1024 * 1024),
            storage_url=Env().text("VIRGA_STORAGE_URL"),
            image_max_bytes=Env().whole("VIRGA_IMAGE_MAX_BYTES", 20 << 30),
            retention_seconds=Env().whole("VIRGA_GATEWAY_RETENTION_SECONDS", 3600),
            write_timeout_seconds=Env().number("VIRGA_GATEWAY_WRITE_TIMEOUT", 5.0),
            console_ticket_seconds=Env().number("VIRGA_CONSOLE_TICKET_SECONDS", 60.0),
            console_log_key=Env().text("VIRGA_CONSOLE_LOG_KEY"),
            web_root=Path(Env().text("VIRGA_GATEWAY_WEB_ROOT") or DEFAULT_WEB_ROOT),
        )


def _secret(env: str, default_file: Path, generate: Callable[[], str], what: str) -> str:
    """`$env`, else the file `$env_FILE` names, else `default_file` (created on first use)."""
    value = os.environ.get(env)
    if value:
        return value
    named = os.environ.get(f"{env}_FILE")
    if named:
        return _read_secret_file(Path(named), env)
    if default_file.exists():
        return _read_secret_file(default_file, env)
    value = generate()
    write_secret_file(default_file, value)
    print(f"virga-gateway: generated a new {what} in {default_file}", file=sys.stderr)
    return value


def _read_secret_file(path: Path, env: str) -> str:
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise SystemExit(f"{env}_FILE: cannot read {path}: {exc.strerror}") from None
    if not value:
        raise SystemExit(f"{env}_FILE: {path} is empty")
    return value


def write_secret_file(path: Path, value: str) -> None:
    """Create `path` readable by its owner only; never overwrite an existing secret."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
