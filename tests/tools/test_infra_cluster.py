"""The native 3-node cluster's configuration: quorum, replication and what clients are told (no servers started)."""

from __future__ import annotations

from pathlib import Path

import pytest
from quartet_tools.infra import SETTINGS_PREFIXES, InfraSettings, KafkaCluster, Stack, broker_settings


def test_a_cluster_node_votes_in_a_static_quorum_with_rf3_min_isr2_and_no_unclean_election() -> None:
    voters = "1@127.0.0.1:7001,2@127.0.0.1:7002,3@127.0.0.1:7003"
    props = broker_settings("127.0.0.1", 9101, 7002, node_id=2, voters=voters, replicas=3, advertised_port=19101)
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == voters
    assert "controller.quorum.bootstrap.servers" not in props
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19101"
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
    ):
        assert props[key] == "3"
    assert props["min.insync.replicas"] == props["transaction.state.log.min.isr"] == "2"
    assert props["unclean.leader.election.enable"] == "false"


def test_a_side_listener_is_listened_on_and_advertised_at_its_own_proxy() -> None:
    props = broker_settings("127.0.0.1", 9101, 7002, advertised_port=19101, side=(9201, 19201))
    assert props["listeners"].endswith(",SIDE://127.0.0.1:9201")
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19101,SIDE://127.0.0.1:19201"
    assert "SIDE:PLAINTEXT" in props["listener.security.protocol.map"].split(",")
    assert props["inter.broker.listener.name"] == "PLAINTEXT"


def test_a_lone_broker_bootstraps_its_own_quorum_and_replicates_nothing() -> None:
    props = broker_settings("127.0.0.1", 9092, 9093)
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert "controller.quorum.voters" not in props
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["offsets.topic.replication.factor"] == props["min.insync.replicas"] == "1"


def test_a_cluster_stack_gives_clients_every_node_and_every_service_rf3(tmp_path: Path) -> None:
    stack = Stack.at(tmp_path, standard_ports=False, kafka_nodes=3)
    assert isinstance(stack.kafka, KafkaCluster)
    ports = [node.port for node in stack.kafka.nodes]
    assert len(set(ports)) == 3
    assert [node.node_id for node in stack.kafka.nodes] == [1, 2, 3]
    assert len({node.workdir for node in stack.kafka.nodes}) == 3
    assert len({node.voters for node in stack.kafka.nodes}) == 1
    env = stack.env()
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == ",".join(f"127.0.0.1:{port}" for port in ports)
    assert {f"{prefix}TOPIC_REPLICATION_FACTOR" for prefix in SETTINGS_PREFIXES} <= set(env)
    assert {env[f"{prefix}TOPIC_REPLICATION_FACTOR"] for prefix in SETTINGS_PREFIXES} == {"3"}


def test_one_broker_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUARTET_KAFKA_NODES", raising=False)
    assert InfraSettings().kafka_nodes == 1
    env = Stack.at(tmp_path, standard_ports=False).env()
    assert "," not in env["KAFKA_BOOTSTRAP_SERVERS"]
    assert not any(key.endswith("TOPIC_REPLICATION_FACTOR") for key in env)
    monkeypatch.setenv("QUARTET_KAFKA_NODES", "3")
    assert InfraSettings().kafka_nodes == 3
