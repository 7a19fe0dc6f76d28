"""The native 3-node cluster's configuration: quorum, replication and what clients are told; and the cluster `make up`
starts, under the simulator's cluster faults."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from quartet_shared.topics import PartitionState
from quartet_tools.cluster import ProxiedCluster
from quartet_tools.infra import (
    CLUSTER_DIR,
    SETTINGS_PREFIXES,
    InfraError,
    InfraSettings,
    KafkaCluster,
    Server,
    Stack,
    broker_settings,
    kafka_serves,
    start_native,
)
from simulator.bootstrap import bundled_scenarios, make_simulation
from simulator.cluster import ClusterFaults
from simulator.domain.scenario import KillBrokerFault
from simulator.scenario_io import load_scenario
from simulator.settings import SimulatorSettings


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


@pytest.mark.integration
def test_the_simulators_cluster_faults_act_on_the_cluster_make_up_starts() -> None:
    """`make up KAFKA_NODES=3`'s servers (`start_native`), found by the simulator through the state its settings
    name: a kill_broker fault SIGKILLs a node and restores it behind the same proxy, and a toxic reaches its proxy."""
    # PostgreSQL's initdb runs as the postgres user, who must reach its data directory.
    workdir = Path(tempfile.mkdtemp(prefix="quartet-up-cluster-"))
    workdir.chmod(0o755)
    try:
        stack = start_native(workdir, standard_ports=False, kafka_nodes=3)
        env = stack.env()
        settings = SimulatorSettings(
            kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
            cluster_state=Path(env["SIMULATOR_CLUSTER_STATE"]),
            topic_replication_factor=3,
            infra="native",
            runs_dir=workdir / "runs",
        )
        simulation = make_simulation(settings, load_scenario(bundled_scenarios()["chaos-cluster"]))
        control = simulation.cluster
        assert isinstance(control, ProxiedCluster) and control.node_ids() == [1, 2, 3]
        node = control.kafka.node(2)
        advertised, before = node.advertised_port, node.pid()
        assert advertised and before is not None
        fault = KillBrokerFault(kind="kill_broker", at_s=0, node=2, down_s=3)
        started = time.monotonic()
        said = ClusterFaults.of(control, settings).inject(fault, pick=0.0)
        restored = time.monotonic() - started
        assert said.startswith("node 2 SIGKILLed, live again after")
        after = stack.kafka.nodes[1].pid()
        assert after is not None and after != before
        config = (node.workdir / "server.properties").read_text()
        assert f"PLAINTEXT://127.0.0.1:{advertised}" in config
        control.wait_until_live([1, 2, 3])
        control.add_toxic(1, "slow", "latency", {"latency": 50})
        assert control.proxies.toxics(ProxiedCluster.proxy(1)) == ["slow-upstream", "slow-downstream"]
        control.remove_toxic(1, "slow")
        assert kafka_serves(stack.kafka.bootstrap, 3)
    finally:
        Stack.at(workdir, standard_ports=False, kafka_nodes=3).stop()
        Server("toxiproxy", 0, workdir / CLUSTER_DIR / "toxiproxy").stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nkill_broker on make up's cluster: {said}; the fault took {restored:.1f} s with down_s 3")


class _Described(ProxiedCluster):
    """A cluster whose metadata answers from a script: first no partition of the new topic, then one in sync."""

    answers: list[list[PartitionState]]

    def partitions(self, topics: Iterable[str] | None = None) -> list[PartitionState]:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_the_isr_wait_waits_for_a_topic_the_metadata_does_not_describe_yet() -> None:
    """all() of no partition is True: the wait once passed before a new topic had a leader."""
    in_sync = PartitionState("new", 0, 1, frozenset({1, 2, 3}), frozenset({1, 2, 3}))
    cluster = _Described(kafka=None, toxiproxy=None, proxies=None)  # type: ignore[arg-type]
    cluster.answers = [[], [], [in_sync]]
    cluster.wait_isr_full(["new"], timeout_s=30)
    assert cluster.answers == [[in_sync]]
    cluster.answers = [[]]
    with pytest.raises(InfraError, match="full ISR"):
        cluster.wait_isr_full(["new"], timeout_s=1)
