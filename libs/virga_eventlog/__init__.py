"""Virga's client for the Kafka event log: topics, a reader, a transactional chained writer."""

from virga_eventlog.deadletter import dead_letter_value, read_dead_letter
from virga_eventlog.dedupe import RecentIds
from virga_eventlog.reader import LogReader
from virga_eventlog.records import (
    Positions,
    RawRecord,
    decode_positions,
    encode_positions,
    partition_of,
)
from virga_eventlog.settings import KafkaSettings
from virga_eventlog.topics import (
    SERVICES,
    TopicSpec,
    dead_letter_topic,
    ensure_topics,
    event_topic,
    snapshot_topic,
    virga_topics,
)
from virga_eventlog.writer import ChainHead, EventWriter, Transaction

__all__ = [
    "SERVICES",
    "ChainHead",
    "EventWriter",
    "KafkaSettings",
    "LogReader",
    "Positions",
    "RawRecord",
    "RecentIds",
    "TopicSpec",
    "Transaction",
    "dead_letter_topic",
    "dead_letter_value",
    "decode_positions",
    "encode_positions",
    "ensure_topics",
    "event_topic",
    "partition_of",
    "read_dead_letter",
    "snapshot_topic",
    "virga_topics",
]
