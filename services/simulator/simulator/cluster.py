"""The cluster faults: Kafka nodes killed, restarted in turn, cut off, slowed, through their processes and the
fault proxy in front of each node.

The tooling's `quartet_tools.cluster.ProxiedCluster` (the test fixtures' cluster) is a ClusterControl; the
simulator, a runtime service, names only this protocol. Leaders and in-sync replicas are read from the cluster's
metadata with the kernel's admin client (`quartet_shared.topics.describe_partitions`). Each fault undoes itself
before it returns, and every wait in it is bounded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from kafka.errors import KafkaError
from quartet_shared.topics import PartitionState, describe_partitions
from quartet_shared.toxiproxy import BOTH_WAYS, ONE_WAY, Stream

from simulator.domain.cluster import NoTarget, choose_node, toxic_attributes, under_replicated
from simulator.domain.scenario import (
    BandwidthFault,
    ClusterFault,
    JobKindName,
    KillBrokerFault,
    KillLeaderFault,
    LatencyFault,
    PartitionFault,
    RestartClusterFault,
)
from simulator.settings import SimulatorSettings
from simulator.workers import WorkerCommand

Describe = Callable[[list[str] | None], list[PartitionState]]


class ClusterControl(Protocol):
    """A Kafka cluster's nodes, what cuts them off, and what cuts a worker off from them.

    Natively the nodes are processes behind fault proxies (the tooling's ProxiedCluster), under Compose containers
    behind the `cluster` profile's Toxiproxy (`ComposeCluster`): either way every Toxiproxy toxic can be added.
    """

    @property
    def worker_bootstrap(self) -> str | None:
        """Where a worker that `cut_side` should cut off must bootstrap (None: the control finds it by itself)."""
        ...

    def node_ids(self) -> list[int]:
        """The nodes' ids."""
        ...

    def kill(self, node_id: int) -> None:
        """SIGKILL one node."""
        ...

    def stop(self, node_id: int) -> None:
        """Stop one node cleanly."""
        ...

    def restart(self, node_id: int) -> None:
        """Start a stopped node again and wait until it is a live broker."""
        ...

    def isolate(self, node_id: int) -> None:
        """Cut one node off from the clients and the other nodes."""
        ...

    def rejoin(self, node_id: int) -> None:
        """End `isolate`."""
        ...

    def add_toxic(
        self, node_id: int, name: str, kind: str, attributes: dict[str, Any], streams: Iterable[Stream] = BOTH_WAYS
    ) -> None:
        """Add a toxic to a node's proxy."""
        ...

    def remove_toxic(self, node_id: int, name: str, streams: Iterable[Stream] = BOTH_WAYS) -> None:
        """Remove a toxic `add_toxic` added."""
        ...

    def cut_side(self) -> None:
        """Cut the worker (bootstrapped on `worker_bootstrap`) off from every node."""
        ...

    def heal_side(self) -> None:
        """End `cut_side`."""
        ...


@dataclass
class ClusterFaults:
    """Injects the cluster faults; `describe(topics)` reads the partitions' leaders and ISRs (None: every topic)."""

    control: ClusterControl
    describe: Describe
    topic_prefix: str = ""
    rental_topic_prefix: str = ""
    poll_s: float = 1.0
    metadata_timeout_s: float = 30.0
    # Faults that stop and start nodes take turns: a rolling restart's SIGTERM to a node another fault is still
    # starting again would end that start (it happened in a chaos-cluster run, a node start taking 20-50 s here).
    _turns: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, control: ClusterControl, settings: SimulatorSettings) -> ClusterFaults:
        """The faults on `control`, reading the metadata through the kernel's admin client with `settings`."""

        def describe(topics: list[str] | None) -> list[PartitionState]:
            return describe_partitions(settings, topics)

        return cls(control, describe, settings.topic_prefix, settings.rental_topic_prefix)

    def inject(self, fault: ClusterFault, pick: float) -> str:
        """Inject one fault and undo it; a sentence saying what was done."""
        if isinstance(fault, KillBrokerFault | KillLeaderFault | RestartClusterFault):
            asked = time.monotonic()
            with self._turns:
                waited = time.monotonic() - asked
                done = (
                    self._rolling_restart(fault) if isinstance(fault, RestartClusterFault) else self._kill(fault, pick)
                )
            return done if waited < 1 else f"{done} (waited {waited:.1f} s for an earlier node fault to end)"
        if isinstance(fault, PartitionFault):
            return self._partition(fault, pick)
        return self._slow(fault, pick)

    def _node(
        self, fault: KillBrokerFault | KillLeaderFault | PartitionFault | LatencyFault | BandwidthFault, pick: float
    ) -> int:
        topic = fault.topic
        partitions = self._partitions([self._prefixed(topic)]) if topic is not None else []
        return choose_node(fault, self.control.node_ids(), pick, partitions)

    def _partitions(self, topics: list[str]) -> list[PartitionState]:
        """The topics' partitions, asked again for at most `metadata_timeout_s` while no node answers (the admin
        client may have picked a node that was just killed, or is cut off)."""
        deadline = time.monotonic() + self.metadata_timeout_s
        while True:
            try:
                return self.describe(topics)
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(self.poll_s)

    def _prefixed(self, topic: str) -> str:
        """A scenario's topic name as this run's topics are named (the rental topics have a prefix of their own)."""
        return (self.rental_topic_prefix if topic.startswith("rental.") else self.topic_prefix) + topic

    def _kill(self, fault: KillBrokerFault | KillLeaderFault, pick: float) -> str:
        node = self._node(fault, pick)
        self.control.kill(node)
        killed = time.monotonic()
        try:
            time.sleep(fault.down_s)
        finally:
            self.control.restart(node)
        return f"node {node} SIGKILLed, live again after {time.monotonic() - killed:.1f} s"

    def _rolling_restart(self, fault: RestartClusterFault) -> str:
        waits = []
        for node in sorted(self.control.node_ids()):
            self.control.stop(node)
            self.control.restart(node)
            waits.append(f"{node}: {self._wait_in_sync(fault.sync_timeout_s):.1f} s")
        return "rolling restart, in sync again after each node: " + ", ".join(waits)

    def _wait_in_sync(self, timeout_s: float) -> float:
        """Wait until no partition is under-replicated; how long it took. NoTarget when it never happens."""
        started = time.monotonic()
        lagging: list[PartitionState] = []
        while time.monotonic() - started < timeout_s:
            try:
                lagging = under_replicated(self.describe(None))
            except Exception:  # a node just back may not answer metadata yet: ask again
                lagging = []
            else:
                if not lagging:
                    return time.monotonic() - started
            time.sleep(self.poll_s)
        shown = ", ".join(f"{p.topic}-{p.partition}" for p in lagging[:5])
        raise NoTarget(f"partitions still under-replicated after {timeout_s:g} s: {shown}")

    def _partition(self, fault: PartitionFault, pick: float) -> str:
        if fault.isolate == "worker":
            self.control.cut_side()
            try:
                time.sleep(fault.duration_s)
            finally:
                self.control.heal_side()
            return f"{fault.target} worker cut off from every node for {fault.duration_s:g} s"
        node = self._node(fault, pick)
        self.control.isolate(node)
        try:
            time.sleep(fault.duration_s)
        finally:
            self.control.rejoin(node)
        return f"node {node} cut off from the clients and the other nodes for {fault.duration_s:g} s"

    def _slow(self, fault: LatencyFault | BandwidthFault, pick: float) -> str:
        node = self._node(fault, pick)
        kind, attributes = toxic_attributes(fault)
        self.control.add_toxic(node, fault.kind, kind, attributes, ONE_WAY)
        try:
            time.sleep(fault.duration_s)
        finally:
            self.control.remove_toxic(node, fault.kind, ONE_WAY)
        what = f"{fault.ms} ms" if isinstance(fault, LatencyFault) else f"{fault.kib_per_s} KiB/s"
        return f"node {node}: {what} on what it sends for {fault.duration_s:g} s"


def on_side_listeners(
    commands: Mapping[str, WorkerCommand], partitioned: set[JobKindName], control: ClusterControl
) -> dict[str, WorkerCommand]:
    """The worker commands with the first worker of each `partitioned` kind bootstrapping on the side listeners,
    so that a worker partition (`cut_side`) cuts it off alone."""
    if control.worker_bootstrap is None:
        return dict(commands)
    side = {0: {"KAFKA_BOOTSTRAP_SERVERS": control.worker_bootstrap}}
    return {kind: replace(c, slot_env=side) if kind in partitioned else c for kind, c in commands.items()}
