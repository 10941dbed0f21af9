"""Replication settings: read from the environment, derived from the cluster's size when
unset, and the comparison that names every topic replicated less than asked."""

from __future__ import annotations

import pytest

from virga_eventlog import KafkaSettings
from virga_eventlog.replication import (
    Replication,
    TopicReplication,
    UnderReplicated,
    for_cluster,
    refusal,
    resolve,
    shortfalls,
)
from virga_eventlog.settings import KafkaSettingsError


def test_unset_settings_follow_the_size_of_the_cluster() -> None:
    settings = KafkaSettings.from_env(environ={})
    assert settings.replication_factor is None
    assert settings.min_insync_replicas is None
    assert resolve(settings, brokers=1) == Replication(1, 1)
    assert resolve(settings, brokers=2) == Replication(1, 1)
    assert resolve(settings, brokers=3) == Replication(3, 2)
    assert resolve(settings, brokers=5) == Replication(3, 2)


def test_settings_are_read_once_from_the_environment() -> None:
    env = {"VIRGA_KAFKA_REPLICATION_FACTOR": "3", "VIRGA_KAFKA_MIN_INSYNC_REPLICAS": " 2 "}
    settings = KafkaSettings.from_env(environ=env)
    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)
    # Given settings win over the cluster's size, even on a single broker.
    assert resolve(settings, brokers=1) == Replication(3, 2)


def test_a_factor_alone_brings_its_own_min_insync() -> None:
    assert for_cluster(1, factor=3) == Replication(3, 2)
    assert for_cluster(5, factor=2) == Replication(2, 1)
    assert for_cluster(5, min_insync=3) == Replication(3, 3)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"VIRGA_KAFKA_REPLICATION_FACTOR": "0"}, "VIRGA_KAFKA_REPLICATION_FACTOR"),
        ({"VIRGA_KAFKA_REPLICATION_FACTOR": "three"}, "VIRGA_KAFKA_REPLICATION_FACTOR"),
        ({"VIRGA_KAFKA_MIN_INSYNC_REPLICAS": "-1"}, "VIRGA_KAFKA_MIN_INSYNC_REPLICAS"),
        (
            {"VIRGA_KAFKA_REPLICATION_FACTOR": "2", "VIRGA_KAFKA_MIN_INSYNC_REPLICAS": "3"},
            "VIRGA_KAFKA_MIN_INSYNC_REPLICAS=3 is more than VIRGA_KAFKA_REPLICATION_FACTOR=2",
        ),
    ],
)
def test_bad_settings_name_their_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(KafkaSettingsError, match=variable):
        KafkaSettings.from_env(environ=env)


def test_min_insync_above_a_derived_factor_is_refused() -> None:
    with pytest.raises(KafkaSettingsError, match="VIRGA_KAFKA_MIN_INSYNC_REPLICAS=2"):
        for_cluster(1, min_insync=2)


def test_topics_get_min_insync_and_no_unclean_election() -> None:
    assert Replication(3, 2).configs() == {
        "min.insync.replicas": "2",
        "unclean.leader.election.enable": "false",
    }


def test_the_comparison_names_every_topic_below_the_setting_and_only_those() -> None:
    topics = [
        TopicReplication("ns.api", 1, 1, False),
        TopicReplication("ns.scheduler", 3, 2, False),
        TopicReplication("ns.billing", 3, 1, False),
        TopicReplication("ns.deadletter.scheduler", 3, 2, True),
        TopicReplication("ns.snapshots.scheduler", 4, 3, False),
    ]
    assert shortfalls(topics, Replication(3, 2)) == [
        "ns.api: replication factor 1 < 3, min.insync.replicas 1 < 2",
        "ns.billing: min.insync.replicas 1 < 2",
        "ns.deadletter.scheduler: unclean.leader.election.enable=true",
    ]
    assert shortfalls(topics[1:2] + topics[4:], Replication(3, 2)) == []
    assert shortfalls([TopicReplication("ns.api", 1, 1, False)], Replication(1, 1)) == []


def test_the_refusal_stops_the_process_with_the_topics_named() -> None:
    error = refusal(["ns.api: replication factor 1 < 3"], Replication(3, 2))
    assert isinstance(error, SystemExit)
    assert isinstance(error, UnderReplicated)
    message = str(error)
    assert message.startswith("refusing to start: 1 topic(s) below the replication setting")
    assert "replication factor 3, min.insync.replicas 2" in message
    assert "VIRGA_KAFKA_REPLICATION_FACTOR" in message
    assert message.endswith("ns.api: replication factor 1 < 3")
