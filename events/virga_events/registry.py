"""The table of event types and the upcasters that bring old versions up to date on read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar

import msgspec

from virga_events.errors import UnknownEventType, UnsupportedVersion

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]


class Event:
    """Base of every event payload: a frozen dataclass named as a past-tense fact.

    `TYPE` and `VERSION` are set by `EventRegistry.register`; they travel in the envelope,
    not in the payload.
    """

    TYPE: ClassVar[str]
    VERSION: ClassVar[int]


E = TypeVar("E", bound=type[Event])


class EventRegistry:
    """Maps (type name) to the current dataclass and (type, version) to upcasters."""

    def __init__(self) -> None:
        self._types: dict[str, type[Event]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._decoders: dict[str, tuple[type[Event], msgspec.json.Decoder[Any]]] = {}

    def register(self, name: str, version: int = 1) -> Callable[[E], E]:
        """Class decorator: register a frozen dataclass as event `name` at `version`."""
        if version < 1:
            raise ValueError(f"event {name}: version must be >= 1")

        def decorate(cls: E) -> E:
            if not hasattr(cls, "__dataclass_fields__"):
                raise TypeError(f"event {name}: {cls.__name__} must be a dataclass")
            if name in self._types and self._types[name] is not cls:
                raise ValueError(f"event type {name} is registered twice")
            known = cls.__dict__.get("TYPE")
            if known is not None and (known, cls.__dict__.get("VERSION")) != (name, version):
                raise ValueError(f"{cls.__name__} is already registered as {known}")
            cls.TYPE = name
            cls.VERSION = version
            self._types[name] = cls
            return cls

        return decorate

    def upcaster(self, name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator: `fn(payload_v{from_version}) -> payload_v{from_version + 1}`."""

        def decorate(fn: Upcaster) -> Upcaster:
            key = (name, from_version)
            if key in self._upcasters:
                raise ValueError(f"upcaster {name} v{from_version} is registered twice")
            self._upcasters[key] = fn
            return fn

        return decorate

    def lookup(self, name: str) -> type[Event]:
        cls = self._types.get(name)
        if cls is None:
            raise UnknownEventType(f"unknown event type {name!r}")
        return cls

    def decoder(self, name: str) -> tuple[type[Event], msgspec.json.Decoder[Any]]:
        """The class of `name` and a cached strict JSON decoder for its current version."""
        found = self._decoders.get(name)
        if found is None:
            cls = self.lookup(name)
            found = self._decoders[name] = (cls, msgspec.json.Decoder(cls))
        return found

    def upcast(self, name: str, version: int, payload: Payload) -> Payload:
        """Bring `payload` from `version` to the registered current version of `name`."""
        current = self.lookup(name).VERSION
        if version > current:
            raise UnsupportedVersion(
                f"{name} v{version} is newer than this build knows (v{current})"
            )
        while version < current:
            step = self._upcasters.get((name, version))
            if step is None:
                raise UnsupportedVersion(f"no upcaster for {name} from v{version}")
            payload = step(payload)
            version += 1
        return payload

    def __iter__(self) -> Iterator[type[Event]]:
        return iter(sorted(self._types.values(), key=lambda cls: cls.TYPE))

    def __contains__(self, name: object) -> bool:
        return name in self._types


REGISTRY = EventRegistry()
"""Virga's own event types register here; tests may build a registry of their own."""

event = REGISTRY.register
upcaster = REGISTRY.upcaster
