"""What one running service instance is and holds: its identity, its state, its positions."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING, Generic

import structlog

from virga_eventlog import (
    EventWriter,
    KafkaSettings,
    Positions,
    RawRecord,
    RecentIds,
    snapshot_topic,
)
from virga_eventlog.topics import agent_families, family_of, host_topic
from virga_events import Envelope
from virga_runtime.hostcheck import placement_of, refusal
from virga_runtime.observability import ServiceMetrics
from virga_runtime.service import S, ServiceDefinition

if TYPE_CHECKING:
    from virga_runtime.runner_config import RunnerConfig

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
        # Per-host services write their own host's topic of their family and tail the family
        # (the shared topic and every peer's) to see their peers.
        self.shared_output = bool(config.instance)
        output = definition.output_topic
        self.output_topic = host_topic(output, config.instance) if config.instance else output
        """The topic this instance writes: `<ns>.<service>.<host>` for a per-host one."""
        family = [output] if config.instance else []
        topics = (*definition.input_topics, output)
        agents = (t for t in agent_families(settings.namespace) if t in topics)
        self.families = tuple(dict.fromkeys([*family, *agents]))
        """Topics read with all their per-host topics (`LogReader`'s families)."""
        self._refused_live: set[tuple[str, int, int]] = set()
        """Records this instance dead-lettered, which its rebuild drops (`refused_live`)."""
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

    def _is_own(self, topic: str) -> bool:
        """A record of our own topic, or (per-host) of our family: folded, never decided on."""
        if topic == self.output_topic:
            return True
        member = family_of(topic, self.families)
        return member is not None and member[0] == self.definition.output_topic

    def _refusal(self, topic: str, envelope: Envelope) -> str | None:
        """Why a record of a host's topic must not be folded (`virga_runtime.hostcheck`)."""
        placed_on = placement_of(self.definition.placed_on, self.state)
        reason = refusal(topic, envelope, self.families, placed_on)
        if reason is not None:
            self._log.warning("host_event_refused", event_id=envelope.event_id, reason=reason)
        return reason

    def _dedupe_key(self, topic: str, envelope: Envelope) -> str:
        """What an input is deduplicated by: its event id, scoped by its host for a host's
        topic, so that no host can make a consumer drop another's event (or a controller's)
        by writing one with the same id first."""
        member = family_of(topic, self.families)
        return f"{envelope.event_id}@{member[1]}" if member and member[1] else envelope.event_id

    def _replay_refusal(self, record: RawRecord, envelope: Envelope) -> str | None:
        """Why a record is dropped on rebuild: refused by the stateless checks, or when it was
        first read (which placement is never checked again, as the state now differs)."""
        if (record.topic, record.partition, record.offset) in self._refused_live:
            return "dead-lettered when first read"
        return refusal(record.topic, envelope, self.families)
