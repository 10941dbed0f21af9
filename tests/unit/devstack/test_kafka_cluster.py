"""The local KRaft cluster's configuration: ports, quorum voters and each node's properties."""

from __future__ import annotations

from pathlib import Path

from virga_devstack.kafka_cluster import (
    KafkaCluster,
    node_settings,
    override_properties,
    quorum_voters,
)
from virga_eventlog.replication import Replication


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_quorum_voters_name_each_controller_by_id_in_order() -> None:
    voters = quorum_voters("127.0.0.1", {3: 19443, 1: 19441, 2: 19442})
    assert voters == "1@127.0.0.1:19441,2@127.0.0.1:19442,3@127.0.0.1:19443"


def test_override_properties_replaces_adds_and_removes() -> None:
    text = "a=1\nb=2\nc=3\n"
    assert override_properties(text, {"b": "20", "c": None, "d": "4"}) == "a=1\nb=20\nd=4\n"


def test_three_combined_nodes_on_consecutive_ports_share_one_quorum(tmp_path: Path) -> None:
    cluster = KafkaCluster(3, 19341, state_root=tmp_path)
    assert cluster.bootstrap_servers == "127.0.0.1:19341,127.0.0.1:19342,127.0.0.1:19343"
    assert [n.controller_port for n in cluster.nodes] == [19441, 19442, 19443]
    assert cluster.voters == "1@127.0.0.1:19441,2@127.0.0.1:19442,3@127.0.0.1:19443"
    assert cluster.replication == Replication(3, 2)
    assert cluster.directory == tmp_path / "kafka-cluster-19341"
    rendered = [properties(node._server_properties()) for node in cluster.nodes]
    for node_id, config in enumerate(rendered, 1):
        port = 19340 + node_id
        assert config["node.id"] == str(node_id)
        assert config["process.roles"] == "broker,controller"
        assert config["controller.quorum.voters"] == cluster.voters
        assert "controller.quorum.bootstrap.servers" not in config
        assert config["listeners"] == (
            f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 100}"
        )
        assert config["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{port}"
        assert config["log.dirs"] == str(
            tmp_path / "kafka-cluster-19341" / f"kafka-{port}" / "data"
        )
        # Internal topics replicated as Virga's own, and never an unclean leader.
        assert config["transaction.state.log.replication.factor"] == "3"
        assert config["transaction.state.log.min.isr"] == "2"
        assert config["offsets.topic.replication.factor"] == "3"
        assert config["min.insync.replicas"] == "2"
        assert config["unclean.leader.election.enable"] == "false"
    # One key per line: an override never leaves the single broker's value beside it.
    text = cluster.nodes[0]._server_properties()
    assert len(text.splitlines()) == len(properties(text))


def test_a_dedicated_controller_is_the_whole_quorum_and_serves_no_clients(tmp_path: Path) -> None:
    cluster = KafkaCluster(3, 19341, controller_port=19500, dedicated_controller=True)
    assert [n.node_id for n in cluster.brokers] == [1, 2, 3]
    controller = cluster.node(4)
    assert controller.roles == "controller"
    assert cluster.voters == "4@127.0.0.1:19503"
    assert cluster.bootstrap_servers == "127.0.0.1:19341,127.0.0.1:19342,127.0.0.1:19343"
    broker = properties(cluster.node(2)._server_properties())
    assert broker["process.roles"] == "broker"
    assert broker["listeners"] == "PLAINTEXT://127.0.0.1:19342"
    assert broker["controller.quorum.voters"] == "4@127.0.0.1:19503"
    config = properties(controller._server_properties())
    assert config["process.roles"] == "controller"
    assert config["listeners"] == "CONTROLLER://127.0.0.1:19503"
    assert "advertised.listeners" not in config
    assert "inter.broker.listener.name" not in config


def test_a_single_node_cluster_keeps_one_copy() -> None:
    settings = node_settings(1, "broker,controller", "x", "1@h:1", Replication(1, 1))
    assert settings["transaction.state.log.replication.factor"] == "1"
    assert settings["min.insync.replicas"] == "1"


def test_a_started_cluster_is_found_again_by_its_port(tmp_path: Path) -> None:
    assert KafkaCluster.found(19341, state_root=tmp_path) is None
    directory = tmp_path / "kafka-cluster-19341"
    directory.mkdir()
    (directory / "cluster.json").write_text('{"brokers": 3, "dedicated_controller": true}')
    found = KafkaCluster.found(19341, state_root=tmp_path)
    assert found is not None
    assert (len(found.brokers), len(found.nodes)) == (3, 4)
    found.forget()
    assert KafkaCluster.found(19341, state_root=tmp_path) is None
