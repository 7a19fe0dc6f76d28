"""The cluster faults: parsed and refused with the field named, planned (which node, which toxic) and injected on
a fake cluster, each undone before it returns; preflight names what a run cannot inject."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from kafka.errors import KafkaConnectionError
from quartet_shared.topics import PartitionState
from quartet_shared.toxiproxy import Stream
from simulator.bootstrap import bundled_scenarios
from simulator.cluster import ClusterFaults, on_side_listeners
from simulator.domain.cluster import NoTarget, choose_node, toxic_attributes, under_replicated
from simulator.domain.plan import PlannedFault, build_plan
from simulator.domain.scenario import (
    BandwidthFault,
    KillBrokerFault,
    KillLeaderFault,
    LatencyFault,
    PartitionFault,
    RestartClusterFault,
    TimedFault,
    WorkerPool,
)
from simulator.faults import FaultInjector
from simulator.scenario_io import ScenarioError, load_scenario, parse_scenario
from simulator.settings import SimulatorSettings
from simulator.workers import WorkerCommand, worker_command

from tests.services.simulator.inputs import GOOD
from tests.services.simulator.preflight import problems, scenario

# The API tests' one-kind scenario, a minute long, with faults to come.
BASE = GOOD.replace("duration_s: 5", "duration_s: 60") + "faults:\n"


def _parse(fault: str) -> Any:
    return parse_scenario(BASE + f"  - {fault}\n", "c.yaml").faults[0]


def _refused(fault: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(BASE + f"  - {fault}\n", "c.yaml")
    return [f"{p.line}:{p.field}: {p.message}" for p in info.value.problems]


def _state(topic: str, partition: int, leader: int, isr: Iterable[int] = (1, 2, 3)) -> PartitionState:
    return PartitionState(topic, partition, leader, frozenset({1, 2, 3}), frozenset(isr))


# ---- the schema -----------------------------------------------------------------------------------------


def test_each_cluster_fault_parses_with_its_defaults() -> None:
    kill = _parse("{kind: kill_broker, at_s: 5}")
    assert isinstance(kill, KillBrokerFault) and (kill.node, kill.topic, kill.down_s) == ("any", None, 10.0)
    leader = _parse("{kind: kill_leader, at_s: 5, topic: training.results, down_s: 3}")
    assert isinstance(leader, KillLeaderFault) and leader.topic == "training.results"
    rolling = _parse("{kind: restart_cluster, at_s: 5}")
    assert isinstance(rolling, RestartClusterFault) and rolling.sync_timeout_s == 120
    cut = _parse("{kind: partition, at_s: 5, duration_s: 10, isolate: worker, target: training}")
    assert isinstance(cut, PartitionFault) and (cut.isolate, cut.target) == ("worker", "training")
    slow = _parse("{kind: latency, at_s: 5, duration_s: 10, node: 2, ms: 200}")
    assert isinstance(slow, LatencyFault) and (slow.node, slow.ms, slow.jitter_ms) == (2, 200, 0)
    narrow = _parse("{kind: bandwidth, at_s: 5, duration_s: 10, topic: training.jobs, kib_per_s: 64}")
    assert isinstance(narrow, BandwidthFault) and narrow.kib_per_s == 64


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("{kind: latency, at_s: 5, duration_s: 10}", "11:faults[0].ms: required field is missing"),
        ("{kind: bandwidth, at_s: 5, duration_s: 10, kib_per_s: 0}", "11:faults[0].kib_per_s: Input should be"),
        ("{kind: kill_leader, at_s: 5}", "11:faults[0].topic: required field is missing"),
        ("{kind: kill_leader, at_s: 5, topic: 'a b'}", "11:faults[0].topic: String should match pattern"),
        ("{kind: kill_broker, at_s: 5, down_s: 601}", "11:faults[0].down_s: Input should be less than or equal"),
        ("{kind: partition, at_s: 5, duration_s: 0}", "11:faults[0].duration_s: Input should be greater than 0"),
        ("{kind: partition, at_s: 5, duration_s: 3, isolate: worker, node: 2}", "11:faults[0]: Value error, a worker"),
        (
            "{kind: partition, at_s: 5, duration_s: 3, target: training}",
            "11:faults[0]: Value error, a broker partition",
        ),
        ("{kind: latency, at_s: 5, duration_s: 3, ms: 5, node: 1, topic: t}", "11:faults[0]: Value error, give a node"),
        ("{kind: kill_broker, at_s: 5, node: 0}", "11:faults[0]: Value error, node 0 is not a node id"),
        ("{kind: restart_cluster, at_s: 60}", "11:faults[0].at_s: 60 s is not inside the run"),
        (
            "{kind: partition, at_s: 5, duration_s: 3, isolate: worker, target: planning}",
            "11:faults[0].target: the mix",
        ),
    ],
)
def test_a_bad_cluster_fault_is_refused_naming_its_line_and_field(fault: str, expected: str) -> None:
    (problem,) = _refused(fault)
    assert problem.startswith(expected), problem


def test_the_bundled_chaos_cluster_scenario_has_every_cluster_fault_and_plans_them() -> None:
    chaos = load_scenario(bundled_scenarios()["chaos-cluster"])
    kinds = {f.kind for _, f in chaos.cluster_faults()}
    assert kinds == {"kill_broker", "kill_leader", "restart_cluster", "partition", "latency", "bandwidth"}
    assert chaos.duration_s <= 300 and chaos.partitioned_workers() == {"training"}
    plan = build_plan(chaos)
    assert [f.fault.kind for f in plan.faults if f.fault.kind in kinds] == [f.kind for _, f in chaos.cluster_faults()]
    assert build_plan(chaos).digest() == plan.digest()


# ---- planning: which node, which toxic -------------------------------------------------------------------


def test_the_node_is_the_one_named_the_topics_leader_or_one_drawn_by_the_pick() -> None:
    named = KillBrokerFault(kind="kill_broker", at_s=1, node=2)
    assert choose_node(named, [1, 2, 3], 0.9, []) == 2
    anyone = KillBrokerFault(kind="kill_broker", at_s=1)
    assert [choose_node(anyone, [3, 1, 2], pick, []) for pick in (0.0, 0.4, 0.99)] == [1, 2, 3]
    leader = KillLeaderFault(kind="kill_leader", at_s=1, topic="t")
    led = [_state("t", 0, 3), _state("t", 1, 2), _state("t", 2, 3)]
    assert choose_node(leader, [1, 2, 3], 0.0, led) == 3
    assert choose_node(leader, [1, 2, 3], 0.0, [_state("t", 0, 2), _state("t", 1, 1)]) == 1


def test_a_node_the_cluster_lacks_or_a_topic_without_a_leader_is_no_target() -> None:
    with pytest.raises(NoTarget, match="node 4 is not in the cluster"):
        choose_node(KillBrokerFault(kind="kill_broker", at_s=1, node=4), [1, 2, 3], 0.0, [])
    with pytest.raises(NoTarget, match="no partition of t has a leader"):
        choose_node(KillLeaderFault(kind="kill_leader", at_s=1, topic="t"), [1, 2, 3], 0.0, [_state("t", 0, -1)])


def test_under_replicated_partitions_are_those_without_a_leader_or_a_replica_out_of_sync() -> None:
    states = [_state("a", 0, 1), _state("a", 1, 2, isr=(2, 3)), _state("b", 0, -1)]
    assert [(p.topic, p.partition) for p in under_replicated(states)] == [("a", 1), ("b", 0)]


def test_toxics_latency_in_ms_and_bandwidth_from_kib_to_toxiproxys_kb() -> None:
    latency = LatencyFault(kind="latency", at_s=1, duration_s=1, ms=200, jitter_ms=20)
    assert toxic_attributes(latency) == ("latency", {"latency": 200, "jitter": 20})
    bandwidth = BandwidthFault(kind="bandwidth", at_s=1, duration_s=1, kib_per_s=64)
    assert toxic_attributes(bandwidth) == ("bandwidth", {"rate": 66})


# ---- injection on a fake cluster ---------------------------------------------------------------------------


class FakeCluster:
    """Three nodes that record what was done to them, in order."""

    worker_bootstrap = "127.0.0.1:19001"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def node_ids(self) -> list[int]:
        return [1, 2, 3]

    def kill(self, node_id: int) -> None:
        self.calls.append(f"kill {node_id}")

    def stop(self, node_id: int) -> None:
        self.calls.append(f"stop {node_id}")

    def restart(self, node_id: int) -> None:
        self.calls.append(f"restart {node_id}")

    def isolate(self, node_id: int) -> None:
        self.calls.append(f"isolate {node_id}")

    def rejoin(self, node_id: int) -> None:
        self.calls.append(f"rejoin {node_id}")

    def add_toxic(
        self, node_id: int, name: str, kind: str, attributes: dict[str, Any], streams: Iterable[Stream] = ()
    ) -> None:
        self.calls.append(f"add {name} {kind} {attributes} on {node_id} {'+'.join(streams)}")

    def remove_toxic(self, node_id: int, name: str, streams: Iterable[Stream] = ()) -> None:
        self.calls.append(f"remove {name} on {node_id} {'+'.join(streams)}")

    def cut_side(self) -> None:
        self.calls.append("cut side")

    def heal_side(self) -> None:
        self.calls.append("heal side")


class Metadata:
    """Partitions as a fake metadata answers: `lagging` under-replicated answers, then all in sync."""

    def __init__(self, leader: int = 2, lagging: int = 0) -> None:
        self.leader, self.lagging = leader, lagging
        self.asked: list[list[str] | None] = []

    def __call__(self, topics: list[str] | None) -> list[PartitionState]:
        self.asked.append(topics)
        if topics is None and self.lagging:
            self.lagging -= 1
            return [_state("x", 0, 1, isr=(1, 2))]
        return [_state("sim.training.results", 0, self.leader)]


def _injector(cluster: FakeCluster, metadata: Metadata) -> FaultInjector:
    return FaultInjector(None, None, ClusterFaults(cluster, metadata, "sim.", poll_s=0.0))


def _inject(injector: FaultInjector, fault: TimedFault) -> str:
    injector.start(PlannedFault(index=0, at_s=0.0, fault=fault, pick=0.5))
    injector.join()
    (record,) = injector.records()
    assert record.ok, record.detail
    assert record.end_s is not None and record.end_s >= record.at_s
    return record.detail


def test_kill_leader_finds_the_topics_leader_under_the_run_prefix_kills_it_and_brings_it_back() -> None:
    cluster, metadata = FakeCluster(), Metadata(leader=3)
    detail = _inject(
        _injector(cluster, metadata), KillLeaderFault(kind="kill_leader", at_s=0, topic="training.results", down_s=0)
    )
    assert metadata.asked == [["sim.training.results"]]
    assert cluster.calls == ["kill 3", "restart 3"]
    assert detail.startswith("node 3 SIGKILLed, live again after")


def test_a_rolling_restart_waits_for_every_partition_in_sync_before_the_next_node() -> None:
    cluster, metadata = FakeCluster(), Metadata(lagging=2)
    detail = _inject(_injector(cluster, metadata), RestartClusterFault(kind="restart_cluster", at_s=0))
    assert cluster.calls == ["stop 1", "restart 1", "stop 2", "restart 2", "stop 3", "restart 3"]
    assert metadata.asked == [None] * 5  # two answers lagging after node 1, then one in sync per node
    assert detail.startswith("rolling restart, in sync again after each node: 1: ")


def test_a_rolling_restart_that_never_gets_back_in_sync_fails_the_fault_within_its_bound() -> None:
    cluster = FakeCluster()
    injector = _injector(cluster, Metadata(lagging=10**6))
    injector.start(PlannedFault(0, 0.0, RestartClusterFault(kind="restart_cluster", at_s=0, sync_timeout_s=0.05), 0.5))
    injector.join()
    (record,) = injector.records()
    assert not record.ok and "still under-replicated after 0.05 s: x-0" in record.detail
    assert cluster.calls == ["stop 1", "restart 1"]


def test_a_broker_partition_isolates_the_node_then_lets_it_rejoin() -> None:
    cluster = FakeCluster()
    fault = PartitionFault(kind="partition", at_s=0, duration_s=0.01, node=1)
    detail = _inject(_injector(cluster, Metadata()), fault)
    assert detail == "node 1 cut off from the clients and the other nodes for 0.01 s"
    assert cluster.calls == ["isolate 1", "rejoin 1"]


def test_a_worker_partition_cuts_the_side_listeners_then_heals_them() -> None:
    cluster = FakeCluster()
    fault = PartitionFault(kind="partition", at_s=0, duration_s=0.01, isolate="worker", target="training")
    assert _inject(_injector(cluster, Metadata()), fault).startswith("training worker cut off from every node")
    assert cluster.calls == ["cut side", "heal side"]


def test_latency_and_bandwidth_slow_what_the_topics_leader_sends_then_are_removed() -> None:
    cluster = FakeCluster()
    injector = _injector(cluster, Metadata(leader=2))
    latency = LatencyFault(kind="latency", at_s=0, duration_s=0.01, topic="training.results", ms=200)
    assert _inject(injector, latency) == "node 2: 200 ms on what it sends for 0.01 s"
    injector = _injector(cluster, Metadata())
    bandwidth = BandwidthFault(kind="bandwidth", at_s=0, duration_s=0.01, node=3, kib_per_s=64)
    assert _inject(injector, bandwidth) == "node 3: 64 KiB/s on what it sends for 0.01 s"
    assert cluster.calls == [
        "add latency latency {'latency': 200, 'jitter': 0} on 2 downstream",
        "remove latency on 2 downstream",
        "add bandwidth bandwidth {'rate': 66} on 3 downstream",
        "remove bandwidth on 3 downstream",
    ]


def test_a_cluster_fault_without_a_cluster_fails_and_is_recorded() -> None:
    injector = FaultInjector(None, None)
    injector.start(PlannedFault(0, 0.0, KillBrokerFault(kind="kill_broker", at_s=0, down_s=0), 0.5))
    injector.join()
    (record,) = injector.records()
    assert not record.ok and "no control of a Kafka cluster" in record.detail


def test_the_first_slot_of_a_partitioned_kind_bootstraps_on_the_side_listeners() -> None:
    main = {"KAFKA_BOOTSTRAP_SERVERS": "main"}
    commands = {kind: WorkerCommand(kind, ["w"], main) for kind in ("training", "planning")}
    moved = on_side_listeners(commands, {"training"}, FakeCluster())
    assert [moved["training"].environment(slot)["KAFKA_BOOTSTRAP_SERVERS"] for slot in (0, 1)] == [
        FakeCluster.worker_bootstrap,
        "main",
    ]
    assert moved["planning"] is commands["planning"]


def test_a_rental_topic_is_named_with_the_rental_prefix() -> None:
    cluster, metadata = FakeCluster(), Metadata()
    faults = ClusterFaults(cluster, metadata, "sim.", "rent.", poll_s=0.0)
    faults.inject(KillLeaderFault(kind="kill_leader", at_s=0, topic="rental.events", down_s=0), 0.5)
    assert metadata.asked == [["rent.rental.events"]]


# ---- preflight -----------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("broker_up")
def test_preflight_names_cluster_faults_it_cannot_inject() -> None:
    faults: list[dict[str, object]] = [
        {"kind": "kill_broker", "at_s": 1, "node": 4},
        {"kind": "partition", "at_s": 1, "duration_s": 2, "isolate": "worker", "target": "training"},
        {"kind": "bandwidth", "at_s": 1, "duration_s": 2, "kib_per_s": 64},
    ]
    without = problems(scenario(faults))
    assert len(without) == 3 and all("needs a Kafka cluster under the simulator's control" in p for p in without)
    assert problems(scenario(faults), cluster=FakeCluster()) == [
        "faults[0] (kill_broker).node: the cluster has no node 4 (its nodes: [1, 2, 3])",
        "faults[1] (partition).target: a worker partition needs a training worker under control "
        "(set workers.<kind>.count in the scenario, or run against Compose)",
    ]
    controlled = problems(scenario(faults[1:]), cluster=FakeCluster(), controlled={"training"})
    assert controlled == []


def test_managed_workers_replicate_the_topics_they_create_as_the_run_does(tmp_path: Path) -> None:
    settings = SimulatorSettings(infra="none", topic_replication_factor=3, topic_prefix="k.", runs_dir=tmp_path)
    training = worker_command(settings, "training", WorkerPool(count=2))
    assert training.env["TRAINING_TOPIC_REPLICATION_FACTOR"] == "3"
    assert training.env["TRAINING_TOPIC_PREFIX"] == "k."


def test_the_leader_is_asked_again_while_the_metadata_cannot_be_read() -> None:
    cluster, metadata = FakeCluster(), Metadata(leader=2)
    answers: list[object] = [KafkaConnectionError("socket disconnected"), KafkaConnectionError("again")]

    def flaky(topics: list[str] | None) -> list[PartitionState]:
        if answers:
            raise answers.pop()  # type: ignore[misc]
        return metadata(topics)

    faults = ClusterFaults(cluster, flaky, "sim.", poll_s=0.0)
    faults.inject(LatencyFault(kind="latency", at_s=0, duration_s=0.01, topic="training.results", ms=5), 0.5)
    assert cluster.calls[0] == "add latency latency {'latency': 5, 'jitter': 0} on 2 downstream"
    cluster.calls.clear()

    def unreadable(topics: list[str] | None) -> list[PartitionState]:
        raise KafkaConnectionError("socket disconnected")

    never = ClusterFaults(cluster, unreadable, "sim.", poll_s=0.0, metadata_timeout_s=0.0)
    with pytest.raises(KafkaConnectionError):
        never.inject(KillLeaderFault(kind="kill_leader", at_s=0, topic="t", down_s=0), 0.5)
    assert cluster.calls == []


class SlowCluster(FakeCluster):
    """A cluster whose node starts take a while, as a JVM's do on a loaded machine."""

    def restart(self, node_id: int) -> None:
        time.sleep(0.3)
        super().restart(node_id)


def test_node_faults_take_turns_so_a_rolling_restart_never_stops_a_node_another_fault_is_starting() -> None:
    cluster = SlowCluster()
    injector = _injector(cluster, Metadata())
    injector.start(PlannedFault(0, 0.0, KillBrokerFault(kind="kill_broker", at_s=0, node=1, down_s=0), 0.5))
    time.sleep(0.05)
    injector.start(PlannedFault(1, 0.0, RestartClusterFault(kind="restart_cluster", at_s=0), 0.5))
    injector.join()
    assert cluster.calls == ["kill 1", "restart 1", "stop 1", "restart 1", "stop 2", "restart 2", "stop 3", "restart 3"]
    assert all(r.ok for r in injector.records())
