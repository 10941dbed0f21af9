"""The claims ledger: which instance holds what on which host, and what each host has in use.

The ledger is immutable: ``claim`` and ``release`` return a new ledger. Concurrent requests
never race on it because the scheduler is the single writer and decides them one after the
other, each against the ledger the previous decision produced.
"""

from __future__ import annotations

from .model import NO_USAGE, Claim, PlacementRequest, Usage
from .persistent import PMap


class Claims:
    """Immutable ledger of claims, with per-host usage kept summed for O(1) capacity checks."""

    __slots__ = ("_by_instance", "_usage")

    def __init__(self) -> None:
        self._by_instance: PMap[str, Claim] = PMap()
        self._usage: PMap[str, Usage] = PMap()

    def claim(self, request: PlacementRequest, host: str) -> Claims:
        """The ledger with ``request``'s resources taken on ``host``."""
        return self.add(Claim.for_request(request, host))

    def add(self, claim: Claim) -> Claims:
        """The ledger with ``claim`` recorded (e.g. when folding an ``InstanceScheduled`` event).

        An instance holds at most one claim: a new one replaces the old, so a redelivered event
        never counts twice and a move frees the source host.
        """
        ledger = self.release(claim.instance_id)
        used = ledger.usage_of(claim.host)
        usage = Usage(
            used.vcpus + claim.vcpus, used.ram_mb + claim.ram_mb, used.disk_gb + claim.disk_gb
        )
        return ledger._replaced(
            ledger._by_instance.set(claim.instance_id, claim),
            ledger._usage.set(claim.host, usage),
        )

    def release(self, instance_id: str) -> Claims:
        """The ledger without the instance's claim; the same ledger if it holds none.

        Releasing twice is harmless, so a compensation and a delete may both release.
        """
        held = self._by_instance.get(instance_id)
        if held is None:
            return self
        used = self.usage_of(held.host)
        usage = Usage(
            used.vcpus - held.vcpus, used.ram_mb - held.ram_mb, used.disk_gb - held.disk_gb
        )
        # Drop emptied hosts so the ledger's size follows live claims, not hosts ever used.
        by_host = (
            self._usage.delete(held.host)
            if usage == NO_USAGE
            else self._usage.set(held.host, usage)
        )
        return self._replaced(self._by_instance.delete(instance_id), by_host)

    def usage_of(self, host: str) -> Usage:
        """What the claims on ``host`` add up to (zero for a host with none)."""
        return self._usage.get(host) or NO_USAGE

    def get(self, instance_id: str) -> Claim | None:
        """The claim ``instance_id`` holds, if any."""
        return self._by_instance.get(instance_id)

    def __contains__(self, instance_id: object) -> bool:
        return instance_id in self._by_instance

    def __len__(self) -> int:
        return len(self._by_instance)

    def all(self) -> list[Claim]:
        """Every claim, sorted by instance id so snapshots and audits are reproducible."""
        claims = (self._by_instance.get(i) for i in self._by_instance)
        return sorted((c for c in claims if c is not None), key=lambda c: c.instance_id)

    def _replaced(self, by_instance: PMap[str, Claim], usage: PMap[str, Usage]) -> Claims:
        new: Claims = Claims.__new__(Claims)
        new._by_instance = by_instance
        new._usage = usage
        return new
