"""A bounded window of recently seen event ids, so a duplicated record is applied once."""

from __future__ import annotations

from collections import OrderedDict


class RecentIds:
    """Remembers the last `capacity` event ids; `seen` answers and records in one step.

    Kafka transactions already prevent most duplicates; this catches what slips through
    (producer retries outside transactions, a re-sent request, a replayed batch). Duplicates
    arrive close to their original, so a window is enough and keeps memory bounded.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, event_id: str) -> bool:
        if event_id in self._ids:
            return True
        self._ids[event_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._ids)

    def dump(self) -> list[str]:
        return list(self._ids)

    @classmethod
    def load(cls, ids: list[str], capacity: int = 100_000) -> RecentIds:
        window = cls(capacity)
        for event_id in ids[-capacity:]:
            window._ids[event_id] = None
        return window
