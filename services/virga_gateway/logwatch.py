"""When the gateway last heard from the event log: its readiness, and the staleness of reads.

A probe asks the broker for the ends of the gateway's own topic every `PROBE_SECONDS`; every
answer, and every committed write, is contact. The log counts as unreachable once the last
contact is `UNREACHABLE_AFTER_SECONDS` old: /healthz answers 503 then, and every read says
how old its projection may be (`Virga-Projection-Age`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from virga_eventlog import KafkaSettings, LogReader

log = structlog.get_logger(__name__)

PROBE_SECONDS = 1.0
"""How often the log is asked for its ends."""
UNREACHABLE_AFTER_SECONDS = 4.0
"""Without contact for this long, the log is unreachable (and the gateway not ready)."""
CLOSE_SECONDS = 5.0


class LogWatch:
    """The time of the last contact with the log, and the probe that keeps it fresh."""

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        client_id: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._topic = topic
        self._client_id = f"{client_id}-probe"
        self._clock = clock
        self._last_contact = clock()
        self._reader: LogReader | None = None

    def contact(self) -> None:
        """The log answered just now."""
        self._last_contact = self._clock()

    def age(self) -> float:
        """Seconds since the log last answered."""
        return max(0.0, self._clock() - self._last_contact)

    def reachable(self) -> bool:
        return self.age() < UNREACHABLE_AFTER_SECONDS

    async def watch(self) -> None:
        """Probe the log forever; never fails (a failed probe is just no contact)."""
        while True:
            try:
                await asyncio.wait_for(self._probe(), UNREACHABLE_AFTER_SECONDS)
                self.contact()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("log_probe_failed", error=repr(exc), last_contact_age=self.age())
            await asyncio.sleep(PROBE_SECONDS)

    async def _probe(self) -> None:
        if self._reader is None:
            reader = LogReader(self._settings, [self._topic], client_id=self._client_id)
            try:
                await reader.start(metadata_timeout=UNREACHABLE_AFTER_SECONDS)
            except BaseException:
                await _stop_quietly(reader)
                raise
            self._reader = reader
        await self._reader.end_offsets()

    async def close(self) -> None:
        if self._reader is not None:
            await _stop_quietly(self._reader)
            self._reader = None


async def _stop_quietly(reader: LogReader) -> None:
    try:
        await asyncio.wait_for(reader.stop(), CLOSE_SECONDS)
    except Exception as exc:
        log.info("log_probe_stop_failed", error=repr(exc))
