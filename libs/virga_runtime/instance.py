"""What one running service instance is and holds: its identity, its state, its positions."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING, Generic

import structlog

from virga_eventlog import EventWriter, KafkaSettings, Positions, RecentIds, snapshot_topic
from virga_runtime.observability import ServiceMetrics
from virga_runtime.service import S, ServiceDefinition

if TYPE_CHECKING:
    from virga_runtime.runner import RunnerConfig

log = structlog.get_logger(__name__)


class ServiceInstance(Generic[S]):
    """The state `ServiceRunner` and its `Decider` half share, declared here once."""

    def __init__(
        self, definition: ServiceDefinition[S], settings: KafkaSettings, config: RunnerConfig
    ) -> None:
        if definition.output_topic in definition.input_topics:
            raise ValueError("a service never decides on its own topic")
        self.definition = definition
        self.settings = settings
        self.config = config
        name = definition.name
        self.producer_name = f"{name}@{config.instance}" if config.instance else name
        self.transactional_id = f"{settings.namespace}-{name}" + (
            f"-{config.instance}" if config.instance else ""
        )
        self.group_id = self.transactional_id
        # A per-host instance has its own snapshot topic, which only its host's user writes.
        self.snapshot_topic = snapshot_topic(name, settings.namespace, config.instance)
        # Per-host services share their topic with their peers and must tail it to see them.
        self.shared_output = bool(config.instance)
        self.state: S = definition.initial_state()
        self.metrics = ServiceMetrics(name)
        self.recent = RecentIds(config.dedupe_capacity)
        self.events_applied = 0
        self._inputs: Positions = {}
        self._undecided: Positions = {}
        """Input positions applied in memory but not yet committed to the consumer group."""
        self._own: Positions = {}
        self._lock = asyncio.Lock()
        """Held around every transaction of `_writer`: one at a time, never cancelled midway."""
        self._writer: EventWriter | None = None
        self._tally: Counter[str] = Counter()
        self._log = log.bind(producer=self.producer_name)
