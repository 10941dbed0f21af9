"""A migrated guest's arrival on the destination, seen on its taps (`core.migration.arrivals`).

The destination's agent plumbed the guest's taps unbound; the incoming QEMU holds them, paused,
sending nothing, until the migration's switchover: QEMU then announces the guest's MAC (once
the migration can no more fail on this side) and the guest runs here. The first frame on any of
its taps is that moment: `MigrationPortActivated` says so at once, and every agent moves the
guest's forwarding here (`core.migration.moved`), a second or more before the source's agent
reports `InstanceMigrated`. Said once per flow, until the log brings it back.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from virga_events.catalog.network import MigrationPortActivated
from virga_network.agent.core.migration import Arrival
from virga_network.agent.drivers.base import DriverError, NetworkDriver
from virga_runtime.service import Emit

log = structlog.get_logger(__name__)


class Arrivals:
    """Watches the taps of the migrations coming here, each flow said once."""

    def __init__(self, driver: NetworkDriver) -> None:
        self._driver = driver
        self._said: set[str] = set()
        """Flows whose activation went out and that the plan still watches (not folded back)."""

    async def seen(self, host: str, awaited: Sequence[Arrival], made: set[str]) -> list[Emit]:
        """Activations of the `awaited` migrations whose guest sent a frame on a tap of it
        made here (`made`: the taps the last convergence left in place)."""
        self._said &= {a.flow_id for a in awaited}
        emits: list[Emit] = []
        for arrival in awaited:
            if arrival.flow_id in self._said or not set(arrival.taps) <= made:
                continue
            try:
                frames = [await self._driver.guest_frames(tap) for tap in arrival.taps]
            except DriverError as exc:
                log.warning("arrival_unreadable", flow_id=arrival.flow_id, reason=str(exc))
                continue
            if any(frames):
                log.info(
                    "migrated_guest_arrived",
                    flow_id=arrival.flow_id,
                    instance_id=arrival.instance_id,
                    taps=arrival.taps,
                )
                self._said.add(arrival.flow_id)
                activated = MigrationPortActivated(
                    flow_id=arrival.flow_id, host=host, source=arrival.source
                )
                emits.append(Emit(activated, arrival.instance_id, arrival.tenant_id))
        return emits
