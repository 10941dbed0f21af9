"""Where the CLI finds its API and token: options, environment, then the saved login."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import orjson

DEFAULT_API = "http://127.0.0.1:8080"


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "virga"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


@dataclass(frozen=True)
class Saved:
    """What `virga login` wrote: the token and the API it was checked against."""

    token: str | None = None
    api: str | None = None


def load() -> Saved:
    path = credentials_path()
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return Saved()
    except (OSError, orjson.JSONDecodeError):
        return Saved()
    if not isinstance(data, dict):
        return Saved()
    token, api = data.get("token"), data.get("api")
    return Saved(token if isinstance(token, str) else None, api if isinstance(api, str) else None)


def save(saved: Saved) -> Path:
    """Write the credentials readable by their owner only (0600, in a 0700 directory)."""
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = credentials_path()
    temporary = path.with_suffix(".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    # Created 0600 from the first byte: the token never sits in a world-readable file.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(orjson.dumps({"token": saved.token, "api": saved.api}))
    temporary.replace(path)
    return path


def forget() -> bool:
    try:
        credentials_path().unlink()
    except FileNotFoundError:
        return False
    return True


def resolve_api(option: str | None) -> str:
    """--api, else VIRGA_API_URL, else the API of the saved login, else the local default."""
    if option:
        return option.rstrip("/")
    if os.environ.get("VIRGA_API_URL"):
        return os.environ["VIRGA_API_URL"].rstrip("/")
    return (load().api or DEFAULT_API).rstrip("/")


def resolve_token() -> str | None:
    """VIRGA_TOKEN, else the saved login's token."""
    return os.environ.get("VIRGA_TOKEN") or load().token
