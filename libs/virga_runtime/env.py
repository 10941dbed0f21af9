"""Reading a service's settings from environment variables, with errors that name the variable."""

from __future__ import annotations

import os
from collections.abc import Mapping

NAMESPACE_VARIABLE = "VIRGA_NAMESPACE"
DEFAULT_NAMESPACE = "virga"


class Env:
    """Typed access to environment variables; blank counts as unset.

    A bad value stops the process (SystemExit) with a message naming the variable: a service
    must not start half-configured.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def text(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def number(self, name: str, default: float) -> float:
        raw = self.text(name)
        try:
            return default if raw is None else float(raw)
        except ValueError:
            raise SystemExit(f"{name} must be a number, got {raw!r}") from None

    def whole(self, name: str, default: int) -> int:
        raw = self.text(name)
        try:
            return default if raw is None else int(raw)
        except ValueError:
            raise SystemExit(f"{name} must be an integer, got {raw!r}") from None

    def namespace(self) -> str:
        """The deployment's topic namespace (`VIRGA_NAMESPACE`, default `virga`).

        `KafkaSettings.from_env` and every service's config take it from this one reader, so
        a service's topics and its transactional ids and snapshots share one namespace.
        """
        return self.text(NAMESPACE_VARIABLE) or DEFAULT_NAMESPACE

    def port(self, name: str) -> int | None:
        """A TCP port, or None when unset."""
        return None if self.text(name) is None else self.whole(name, 0)
