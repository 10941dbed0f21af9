"""The raw record as read from Kafka, before decoding; positions are (topic, partition)."""

from __future__ import annotations

from typing import Protocol

from aiokafka import TopicPartition

Positions = dict[TopicPartition, int]
"""Next offset to read, per partition."""


class RawRecord(Protocol):
    """One record as the broker returned it (aiokafka's ConsumerRecord satisfies this).

    Records are passed on as aiokafka built them: wrapping millions of them during a rebuild
    would cost more than decoding them.
    """

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None:
        """The aggregate id for Virga events."""

    @property
    def value(self) -> bytes | None:
        """An encoded envelope (or garbage, for the dead-letter topic to keep)."""

    @property
    def timestamp(self) -> int:
        """Producer/broker time in ms: log time, never used as event time."""


def partition_of(record: RawRecord) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


def encode_positions(positions: Positions) -> dict[str, int]:
    return {f"{tp.topic}/{tp.partition}": offset for tp, offset in positions.items()}


def decode_positions(data: dict[str, int]) -> Positions:
    result: Positions = {}
    for name, offset in data.items():
        topic, _, partition = name.rpartition("/")
        result[TopicPartition(topic, int(partition))] = offset
    return result
