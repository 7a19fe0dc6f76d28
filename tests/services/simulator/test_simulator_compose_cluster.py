"""The cluster faults under Compose, through the Docker API (on a fake): the `cluster` profile's kafka-N containers
killed, stopped and started again until healthy, a node or a worker disconnected from its networks and connected
again under the same aliases; latency and bandwidth refused, since Compose puts no proxy in front of a node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from simulator.cluster import ClusterFaults
from simulator.domain.scenario import KillBrokerFault, PartitionFault, RestartClusterFault
from simulator.servers import ComposeCluster

from tests.services.simulator.test_simulator_workers import FakeContainer, FakeDocker


@dataclass
class FakeNode(FakeContainer):
    """A container with networks and a health check that turns healthy after `unhealthy_reloads` reloads."""

    unhealthy_reloads: int = 0
    networks: dict[str, list[str]] = field(default_factory=lambda: {"quartet_default": ["kafka", "kafka-1"]})

    @property
    def attrs(self) -> dict[str, Any]:
        health = "healthy" if self.unhealthy_reloads <= 0 and self.status == "running" else "starting"
        nets = {name: {"Aliases": aliases} for name, aliases in self.networks.items()}
        return {"State": {"Health": {"Status": health}}, "NetworkSettings": {"Networks": nets}}

    def reload(self) -> None:
        self.unhealthy_reloads -= 1


@dataclass
class FakeNetwork:
    name: str
    calls: list[str]

    def disconnect(self, container: FakeNode) -> None:
        self.calls.append(f"disconnect {container.name} from {self.name}")
        container.networks.pop(self.name)

    def connect(self, container: FakeNode, aliases: list[str]) -> None:
        self.calls.append(f"connect {container.name} to {self.name} as {aliases}")
        container.networks[self.name] = aliases


@dataclass
class FakeNetworks:
    calls: list[str] = field(default_factory=list)

    def get(self, name: str) -> FakeNetwork:
        return FakeNetwork(name, self.calls)


@dataclass
class FakeDockerWithNetworks(FakeDocker):
    networks: FakeNetworks = field(default_factory=FakeNetworks)


def _compose(*extra: FakeNode, cut_kinds: tuple[str, ...] = ()) -> tuple[ComposeCluster, list[FakeNode], FakeNetworks]:
    nodes = [FakeNode(f"quartet-kafka-{n}-1", f"kafka-{n}") for n in (1, 2, 3)]
    docker = FakeDockerWithNetworks([*nodes, *extra])
    return ComposeCluster(docker, "quartet", cut_kinds=cut_kinds, poll_s=0), nodes, docker.networks


def test_the_nodes_are_the_projects_kafka_n_containers() -> None:
    control, _, _ = _compose()
    assert control.node_ids() == [1, 2, 3]
    assert not control.network_toxics and control.worker_bootstrap is None


def test_a_killed_node_is_started_again_and_waited_for_until_healthy() -> None:
    control, nodes, _ = _compose()
    nodes[1].unhealthy_reloads = 3
    ClusterFaults(control, lambda topics: []).inject(KillBrokerFault(kind="kill_broker", at_s=0, node=2, down_s=0), 0)
    assert nodes[1].calls == ["kill SIGKILL", "start"]
    assert nodes[1].attrs["State"]["Health"]["Status"] == "healthy"


def test_a_node_that_never_gets_healthy_fails_within_the_bound() -> None:
    control, nodes, _ = _compose()
    control.health_timeout_s = 0.01
    nodes[0].unhealthy_reloads = 10**9
    control.stop(1)
    with pytest.raises(RuntimeError, match=r"kafka-1 not healthy 0\.01 s after its start"):
        control.restart(1)


def test_a_rolling_restart_stops_and_starts_each_container_in_turn() -> None:
    control, nodes, _ = _compose()
    ClusterFaults(control, lambda topics: [], poll_s=0).inject(RestartClusterFault(kind="restart_cluster", at_s=0), 0)
    assert [n.calls for n in nodes] == [["stop 30", "start"]] * 3


def test_a_partitioned_node_is_disconnected_and_connected_again_under_its_aliases() -> None:
    control, nodes, networks = _compose()
    fault = PartitionFault(kind="partition", at_s=0, duration_s=0.01, node=3)
    ClusterFaults(control, lambda topics: []).inject(fault, 0)
    assert networks.calls == [
        "disconnect quartet-kafka-3-1 from quartet_default",
        "connect quartet-kafka-3-1 to quartet_default as ['kafka', 'kafka-1']",
    ]
    assert nodes[2].networks == {"quartet_default": ["kafka", "kafka-1"]}


def test_a_worker_partition_disconnects_the_first_worker_of_the_kind_only() -> None:
    first = FakeNode("quartet-training-worker-1", "training-worker", networks={"quartet_default": ["training-worker"]})
    second = FakeNode("quartet-training-worker-2", "training-worker")
    control, _, networks = _compose(second, first, cut_kinds=("training",))
    fault = PartitionFault(kind="partition", at_s=0, duration_s=0.01, isolate="worker", target="training")
    ClusterFaults(control, lambda topics: []).inject(fault, 0)
    assert networks.calls == [
        "disconnect quartet-training-worker-1 from quartet_default",
        "connect quartet-training-worker-1 to quartet_default as ['training-worker']",
    ]


def test_a_toxic_is_refused_under_compose() -> None:
    control, _, _ = _compose()
    with pytest.raises(RuntimeError, match="no fault proxy in front of kafka-1 under Compose"):
        control.add_toxic(1, "latency", "latency", {"latency": 200})
