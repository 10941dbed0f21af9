"""Typed errors raised when a record cannot become an event; each names what is wrong."""

from __future__ import annotations


class EventDecodeError(Exception):
    """A record could not be decoded into a valid event. `reason` is for the dead-letter topic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedRecord(EventDecodeError):
    """The bytes are not a JSON object, or the envelope lacks or mistypes a field."""


class UnknownEventType(EventDecodeError):
    """The envelope names an event type this build does not know."""


class UnsupportedVersion(EventDecodeError):
    """The event's version is newer than this build, or no upcaster reaches the current one."""


class InvalidPayload(EventDecodeError):
    """The payload does not match its event type's schema (missing or mistyped field)."""
