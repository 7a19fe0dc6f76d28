"""The cluster faults under Compose, through the Docker API (on a fake): the `cluster` profile's kafka-N containers
killed, stopped and started again until healthy, a node or a worker disconnected from its networks and connected
again under the same aliases; every toxic on both of the node's proxies of the profile's Toxiproxy, whose API is
found where the engine publishes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from quartet_shared.toxiproxy import ONE_WAY
from simulator.cluster import ClusterFaults
from simulator.domain.scenario import KillBrokerFault, PartitionFault, RestartClusterFault
from simulator.servers import ComposeCluster
from simulator.settings import SimulatorSettings

from tests.services.simulator.fakes import FakeNetworks, FakeNode, FakeProxies, compose_docker
from tests.services.simulator.preflight import problems, scenario


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


def test_a_toxic_goes_on_both_of_the_nodes_proxies_on_each_stream_and_comes_off_again() -> None:
    docker, _ = compose_docker()
    proxies = FakeProxies()
    control = ComposeCluster(docker, "quartet", proxies=proxies)  # type: ignore[arg-type]
    control.add_toxic(2, "latency", "latency", {"latency": 200, "jitter": 0}, ONE_WAY)
    control.add_toxic(2, "cut", "timeout", {"timeout": 0})
    latency = ("latency", "downstream", {"latency": 200, "jitter": 0})
    cut = {f"cut-{s}": ("timeout", s, {"timeout": 0}) for s in ("upstream", "downstream")}
    assert proxies.toxics == {proxy: {"latency-downstream": latency, **cut} for proxy in ("kafka-2", "kafka-2-host")}
    control.remove_toxic(2, "latency", ONE_WAY)
    assert proxies.toxics == {"kafka-2": cut, "kafka-2-host": cut}
    with pytest.raises(RuntimeError, match="no kafka-4 container"):
        control.add_toxic(4, "latency", "latency", {"latency": 200}, ONE_WAY)


def test_removing_a_toxic_goes_on_past_a_proxy_that_has_lost_it() -> None:
    """A restarted proxy server keeps no toxics; a half-done add put the toxic on one proxy of two."""
    docker, _ = compose_docker()
    proxies = FakeProxies()
    control = ComposeCluster(docker, "quartet", proxies=proxies)  # type: ignore[arg-type]
    control.add_toxic(2, "latency", "latency", {"latency": 200}, ONE_WAY)
    del proxies.toxics["kafka-2"]["latency-downstream"]
    control.remove_toxic(2, "latency", ONE_WAY)
    assert proxies.toxics == {"kafka-2": {}, "kafka-2-host": {}}


@dataclass
class FakeProxyContainer(FakeNode):
    ports: dict[str, list[dict[str, str]] | None] = field(default_factory=dict)

    @property
    def attrs(self) -> dict[str, Any]:
        return {"NetworkSettings": {"Networks": {}, "Ports": self.ports}}


@pytest.mark.parametrize(
    ("host_ip", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:49153"),
        ("::1", "http://[::1]:49153"),
        # Published on every interface (or on none named): reached on the loopback, never on the wildcard.
        ("0.0.0.0", "http://127.0.0.1:49153"),
        ("::", "http://127.0.0.1:49153"),
        ("", "http://127.0.0.1:49153"),
    ],
)
def test_the_proxys_api_is_found_where_the_engine_publishes_it(host_ip: str, url: str) -> None:
    published = {"8474/tcp": [{"HostIp": host_ip, "HostPort": "49153"}], "9192/tcp": None}
    docker, _ = compose_docker(FakeProxyContainer("quartet-toxiproxy-1", "toxiproxy", ports=published))
    assert ComposeCluster(docker, "quartet").toxiproxy_api() == url
    given = ComposeCluster(docker, "quartet", toxiproxy_url="http://toxiproxy:8474")
    assert given.toxiproxy_api() == "http://toxiproxy:8474"


@pytest.mark.parametrize(("host_ip", "url"), [("::", "http://[::1]:49153"), ("10.0.0.5", "http://10.0.0.5:49153")])
def test_a_wildcard_is_reached_where_the_compose_host_setting_says(
    host_ip: str, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIMULATOR_COMPOSE_HOST", raising=False)
    assert SimulatorSettings(_env_file=None).compose_host == "127.0.0.1"  # type: ignore[call-arg]
    monkeypatch.setenv("SIMULATOR_COMPOSE_HOST", "::1")
    told = SimulatorSettings(_env_file=None).compose_host  # type: ignore[call-arg]
    published = {"8474/tcp": [{"HostIp": host_ip, "HostPort": "49153"}]}
    docker, _ = compose_docker(FakeProxyContainer("quartet-toxiproxy-1", "toxiproxy", ports=published))
    assert ComposeCluster(docker, "quartet", published_host=told).toxiproxy_api() == url


def test_without_a_toxiproxy_container_a_toxic_is_refused_with_the_reason() -> None:
    docker, _ = compose_docker()
    with pytest.raises(RuntimeError, match=r"no toxiproxy container in the Compose project"):
        ComposeCluster(docker, "quartet").add_toxic(1, "latency", "latency", {"latency": 200}, ONE_WAY)
    unpublished = FakeProxyContainer("quartet-toxiproxy-1", "toxiproxy", ports={"8474/tcp": None})
    docker, _ = compose_docker(unpublished)
    with pytest.raises(RuntimeError, match=r"publishes no API port: set SIMULATOR_TOXIPROXY_URL"):
        ComposeCluster(docker, "quartet").add_toxic(1, "latency", "latency", {"latency": 200}, ONE_WAY)


@pytest.mark.usefixtures("broker_up")
def test_preflight_passes_every_network_fault_under_compose() -> None:
    docker, _ = compose_docker()
    slow = scenario(
        [
            {"kind": "latency", "at_s": 1, "node": 1, "ms": 200, "duration_s": 2},
            {"kind": "bandwidth", "at_s": 1, "node": 1, "kib_per_s": 64, "duration_s": 2},
        ]
    )
    assert problems(slow, cluster=ComposeCluster(docker)) == []
