"""The cluster faults under Compose, through the Docker API (on a fake): the `cluster` profile's kafka-N containers
killed, stopped and started again until healthy, a node or a worker disconnected from its networks and connected
again under the same aliases; latency and bandwidth as `tc` run by a helper container in the node's network
namespace (the exact container runs are checked), every other toxic refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from docker.errors import ContainerError, ImageNotFound
from simulator.cluster import ONE_WAY, ClusterFaults
from simulator.domain.scenario import BandwidthFault, KillBrokerFault, LatencyFault, PartitionFault, RestartClusterFault
from simulator.servers import ComposeCluster
from simulator.traffic import NETEM_IMAGE

from tests.services.simulator.test_simulator_preflight import broker_up, problems, scenario  # noqa: F401
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

    @property
    def id(self) -> str:
        return f"id-{self.name}"


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
class FakeImages:
    present: set[str] = field(default_factory=lambda: {NETEM_IMAGE})

    def get(self, name: str) -> str:
        if name not in self.present:
            raise ImageNotFound(f"no such image: {name}")
        return name


@dataclass
class FakeDockerWithNetworks(FakeDocker):
    """Containers, networks and images; `run` records each helper run and fails netem where the kernel lacks it."""

    networks: FakeNetworks = field(default_factory=FakeNetworks)
    images: FakeImages = field(default_factory=FakeImages)
    runs: list[tuple[str, list[str], dict[str, Any]]] = field(default_factory=list)
    kernel_netem: bool = True

    def run(self, image: str, command: list[str], **options: Any) -> bytes:
        self.runs.append((image, command, options))
        if "netem" in " ".join(command) and not self.kernel_netem:
            raise ContainerError(None, 2, command, image, b"Error: Specified qdisc kind is unknown.")
        return b""


def compose_docker(*extra: FakeNode) -> tuple[FakeDockerWithNetworks, list[FakeNode]]:
    """The `cluster` profile's three nodes (and `extra` containers) on a fake Docker API."""
    nodes = [FakeNode(f"quartet-kafka-{n}-1", f"kafka-{n}") for n in (1, 2, 3)]
    return FakeDockerWithNetworks([*nodes, *extra]), nodes


def _compose(*extra: FakeNode, cut_kinds: tuple[str, ...] = ()) -> tuple[ComposeCluster, list[FakeNode], FakeNetworks]:
    docker, nodes = compose_docker(*extra)
    return ComposeCluster(docker, "quartet", cut_kinds=cut_kinds, poll_s=0), nodes, docker.networks


def test_the_nodes_are_the_projects_kafka_n_containers() -> None:
    control, _, _ = _compose()
    assert control.node_ids() == [1, 2, 3]
    assert control.worker_bootstrap is None


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


PROBE = ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]
HELPER = {"cap_add": ["NET_ADMIN"], "remove": True}
CLEAR = "tc qdisc del dev eth0 root 2>/dev/null || true"


def _on_node(node: FakeNode, *lines: str) -> tuple[str, list[str], dict[str, Any]]:
    return NETEM_IMAGE, ["sh", "-ec", "\n".join(lines)], {**HELPER, "network_mode": f"container:{node.id}"}


def test_latency_is_netem_on_what_the_node_sends_run_in_its_namespace_and_taken_off_again() -> None:
    docker, nodes = compose_docker()
    control = ComposeCluster(docker, "quartet")
    fault = LatencyFault(kind="latency", at_s=0, node=2, ms=200, jitter_ms=10, duration_s=0.01)
    said = ClusterFaults(control, lambda topics: []).inject(fault, 0)
    assert said == "node 2: 200 ms on what it sends for 0.01 s"
    assert docker.runs == [
        (NETEM_IMAGE, PROBE, {**HELPER, "network_mode": "none"}),
        _on_node(nodes[1], CLEAR, "tc qdisc add dev eth0 root handle 1: netem delay 200ms 10ms"),
        _on_node(nodes[1], CLEAR),
    ]


def test_bandwidth_is_a_token_bucket_at_toxiproxys_rate_and_needs_no_netem() -> None:
    docker, nodes = compose_docker()
    docker.kernel_netem = False
    control = ComposeCluster(docker, "quartet")
    fault = BandwidthFault(kind="bandwidth", at_s=0, node=1, kib_per_s=64, duration_s=0.01)
    ClusterFaults(control, lambda topics: []).inject(fault, 0)
    # 64 KiB/s is Toxiproxy's rate 66 (KB/s of 1000 bytes): 66,000 bytes/s, 528,000 bits/s, a 6,600-byte bucket.
    bucket = "tc qdisc add dev eth0 root handle 1: tbf rate 528000bit burst 6600 latency 1s"
    assert docker.runs == [_on_node(nodes[0], CLEAR, bucket), _on_node(nodes[0], CLEAR)]


def test_latency_and_bandwidth_together_chain_the_bucket_under_netem_and_one_stays_when_the_other_goes() -> None:
    docker, nodes = compose_docker(FakeNode("quartet-kafka-3-1", "kafka-3", networks={"a": [], "b": []}))
    control = ComposeCluster(docker, "quartet")
    control.add_toxic(3, "latency", "latency", {"latency": 200, "jitter": 0}, ONE_WAY)
    control.add_toxic(3, "bandwidth", "bandwidth", {"rate": 2}, ONE_WAY)
    control.remove_toxic(3, "latency", ONE_WAY)
    control.remove_toxic(3, "latency", ONE_WAY)
    node = nodes[2]
    both = [
        "tc qdisc add dev {d} root handle 1: netem delay 200ms",
        "tc qdisc add dev {d} parent 1:1 handle 10: tbf rate 16000bit burst 4096 latency 1s",
    ]
    each = [f"tc qdisc del dev {d} root 2>/dev/null || true" for d in ("eth0", "eth1")]
    assert [command for _, command, _ in docker.runs[1:]] == [
        ["sh", "-ec", "\n".join([each[0], both[0].format(d="eth0")])],
        ["sh", "-ec", "\n".join([each[0], *(line.format(d="eth0") for line in both)])],
        [
            "sh",
            "-ec",
            "\n".join([each[0], both[1].replace("parent 1:1 handle 10:", "root handle 1:").format(d="eth0")]),
        ],
    ]
    assert all(options["network_mode"] == f"container:{node.id}" for _, _, options in docker.runs[1:])
    assert len(docker.runs) == 4


def test_other_toxics_a_missing_image_a_kernel_without_netem_and_upstream_are_refused_with_the_reason() -> None:
    docker, _ = compose_docker()
    control = ComposeCluster(docker, "quartet")
    with pytest.raises(RuntimeError, match=r"kafka-1: under Compose only latency and bandwidth are shaped"):
        control.add_toxic(1, "cut", "timeout", {"timeout": 0}, ONE_WAY)
    with pytest.raises(RuntimeError, match=r"kafka-1: under Compose a latency toxic shapes only what the node sends"):
        control.add_toxic(1, "latency", "latency", {"latency": 200})
    docker.kernel_netem = False
    assert ComposeCluster(docker).toxic_refusal("latency") == (
        "the engine's kernel has no netem qdisc (CONFIG_NET_SCH_NETEM), which latency needs under Compose"
    )
    docker.images.present.clear()
    assert ComposeCluster(docker).toxic_refusal("bandwidth") == (
        f"the traffic-control helper image {NETEM_IMAGE} is missing (make images builds it)"
    )
    assert [command for _, command, _ in docker.runs] == [PROBE, PROBE]


@pytest.mark.usefixtures("broker_up")
def test_preflight_passes_latency_and_bandwidth_under_compose_and_names_why_where_they_cannot_be_had() -> None:
    docker, _ = compose_docker()
    slow = scenario(
        [
            {"kind": "latency", "at_s": 1, "node": 1, "ms": 200, "duration_s": 2},
            {"kind": "bandwidth", "at_s": 1, "node": 1, "kib_per_s": 64, "duration_s": 2},
        ]
    )
    assert problems(slow, cluster=ComposeCluster(docker)) == []
    docker.kernel_netem = False
    assert problems(slow, cluster=ComposeCluster(docker)) == [
        "faults[0] (latency).kind: latency cannot be added: the engine's kernel has no netem qdisc "
        "(CONFIG_NET_SCH_NETEM), which latency needs under Compose"
    ]
