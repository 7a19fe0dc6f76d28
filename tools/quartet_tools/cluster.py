"""A native Kafka cluster with a Toxiproxy proxy in front of each node, and what a fault does to it.

Each node advertises its proxy's address (toxiproxy#171), so every client and replica connection after the
bootstrap crosses it; each node also has a second client listener, SIDE, behind a proxy of its own, so that a
client bootstrapped on `side_bootstrap` (one worker, say) can be cut off alone. The test fixtures and the
simulator's cluster faults (`simulator.cluster.ClusterControl`) drive the same object.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka.errors import KafkaConnectionError
from quartet_shared.net import free_port
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import PartitionState, describe_partitions
from quartet_shared.toxiproxy import BOTH_WAYS, Stream, ToxiproxyClient

from quartet_tools.infra import KafkaCluster, Stack, live_brokers, wait_for
from quartet_tools.toxiproxy import ToxiproxyServer

NODES = 3
# What `start` wrote for `attach`: the proxy's API port and the nodes' directory.
CONTROL_FILE = "control.json"
# Long enough for a JVM to start on two cores shared with other runs (a cluster has taken 35 s alone).
NODE_START_S = 180.0
# How often `partitions` asks before a connection error is the caller's: more than the fence time in seconds.
METADATA_ATTEMPTS = 10


@dataclass
class ProxiedCluster:
    """Combined KRaft nodes on free ports under a private directory, each behind its own Toxiproxy proxy
    (`proxy(node_id)`, which the node advertises) and a side proxy (`side_proxy(node_id)`)."""

    kafka: KafkaCluster
    toxiproxy: ToxiproxyServer
    proxies: ToxiproxyClient

    @classmethod
    def start(
        cls, workdir: Path, nodes: int = NODES, ports: list[int] | None = None, kafka_dir: Path | None = None
    ) -> ProxiedCluster:
        """Start the proxy and the nodes (on `ports`, else free ones; under `kafka_dir`, else `workdir`/kafka); wait
        until the cluster takes acks=all writes replicated on all three. `attach(workdir)` finds it again."""
        toxiproxy = ToxiproxyServer("toxiproxy", free_port(), workdir / "toxiproxy")
        toxiproxy.start()
        proxies = toxiproxy.client()
        ports = ports or [free_port() for _ in range(nodes)]
        kafka_dir = kafka_dir or workdir / "kafka"
        (workdir / CONTROL_FILE).write_text(json.dumps({"toxiproxy_port": toxiproxy.port, "kafka": str(kafka_dir)}))
        advertised = [proxies.create_proxy(cls.proxy(i), f"127.0.0.1:{port}") for i, port in enumerate(ports, 1)]
        side_ports = [free_port() for _ in range(nodes)]
        sides = [
            (port, proxies.create_proxy(cls.side_proxy(i), f"127.0.0.1:{port}")) for i, port in enumerate(side_ports, 1)
        ]
        kafka = KafkaCluster.at(kafka_dir, ports, advertised_ports=advertised, sides=sides)
        try:
            kafka.start(timeout_s=NODE_START_S)
        except BaseException:
            kafka.stop()
            toxiproxy.stop()
            raise
        return cls(kafka, toxiproxy, proxies)

    @classmethod
    def attach(cls, workdir: Path) -> ProxiedCluster | None:
        """The cluster a `start` under `workdir` left running (another process's: `make up`'s), or None."""
        try:
            control = json.loads((workdir / CONTROL_FILE).read_text())
        except (OSError, ValueError):
            return None
        kafka = KafkaCluster.saved(Path(control["kafka"]))
        toxiproxy = ToxiproxyServer("toxiproxy", int(control["toxiproxy_port"]), workdir / "toxiproxy")
        if kafka is None or not toxiproxy.running():
            return None
        return cls(kafka, toxiproxy, toxiproxy.client())

    @property
    def bootstrap(self) -> str:
        """Every node, as a comma list."""
        return self.kafka.bootstrap

    @property
    def side_bootstrap(self) -> str:
        """Every node's second listener through its side proxy: a client bootstrapped here stays on them."""
        return ",".join(f"127.0.0.1:{node.side[1]}" for node in self.kafka.nodes if node.side)

    @property
    def worker_bootstrap(self) -> str:
        """Where a client `cut_side` cuts off bootstraps: the side listeners."""
        return self.side_bootstrap

    def node_ids(self) -> list[int]:
        """The nodes' ids, in order."""
        return [node.node_id for node in self.kafka.nodes]

    @staticmethod
    def proxy(node_id: int) -> str:
        """The name of the Toxiproxy proxy in front of a node: every client and replica connection goes through it."""
        return f"kafka-{node_id}"

    @staticmethod
    def side_proxy(node_id: int) -> str:
        """The name of the proxy in front of a node's second client listener."""
        return f"side-kafka-{node_id}"

    def add_toxic(
        self, node_id: int, name: str, kind: str, attributes: dict[str, Any], streams: Iterable[Stream] = BOTH_WAYS
    ) -> None:
        """A toxic on a node's proxy, on each of `streams` (named `name-stream`)."""
        for stream in streams:
            self.proxies.add_toxic(self.proxy(node_id), f"{name}-{stream}", kind, attributes, stream)

    def remove_toxic(self, node_id: int, name: str, streams: Iterable[Stream] = BOTH_WAYS) -> None:
        """Remove what `add_toxic` added under `name`."""
        for stream in streams:
            self.proxies.remove_toxic(self.proxy(node_id), f"{name}-{stream}")

    def isolate(self, node_id: int) -> None:
        """Black-hole a node's proxy both ways: the clients and the other nodes' replica fetches cannot reach it
        (the controllers' own connections do not cross the proxies); `rejoin` ends it."""
        self.add_toxic(node_id, "isolated", "timeout", {"timeout": 0})

    def rejoin(self, node_id: int) -> None:
        """End `isolate`."""
        self.remove_toxic(node_id, "isolated")

    def cut_side(self) -> None:
        """Black-hole every side proxy: whoever bootstrapped on `side_bootstrap` is partitioned from the cluster
        (its requests are held, nothing answers, no connection closes); `heal_side` or `proxies.reset` ends it."""
        for node in self.kafka.nodes:
            for stream in BOTH_WAYS:
                self.proxies.add_toxic(
                    self.side_proxy(node.node_id), f"cut-{stream}", "timeout", {"timeout": 0}, stream
                )

    def heal_side(self) -> None:
        """End `cut_side`."""
        for node in self.kafka.nodes:
            for stream in BOTH_WAYS:
                self.proxies.remove_toxic(self.side_proxy(node.node_id), f"cut-{stream}")

    def settings(self, **overrides: Any) -> KernelSettings:
        """Kernel settings pointed at the cluster, creating topics replicated three times (min ISR 2)."""
        return KernelSettings(
            kafka_bootstrap_servers=self.bootstrap,
            topic_replication_factor=min(NODES, len(self.kafka.nodes)),
            **overrides,
        )

    def partitions(self, topics: Iterable[str] | None = None) -> list[PartitionState]:
        """The partitions of `topics` (of every topic with None) as the metadata describes them now."""
        live = self.settings().model_copy(update={"kafka_bootstrap_servers": self._live_bootstrap()})
        # Until the controller fences a killed node (6 s) the metadata still names it, and the admin client may send
        # its request there: a dropped or refused connection is tried again, a bounded number of times.
        for _ in range(METADATA_ATTEMPTS - 1):
            try:
                return describe_partitions(live, topics)
            except KafkaConnectionError:
                time.sleep(1.0)
        return describe_partitions(live, topics)

    def live(self) -> set[int]:
        """The node ids the cluster's metadata lists as live brokers."""
        return live_brokers(self._live_bootstrap())

    def _live_bootstrap(self) -> str:
        # A client bootstrapping from a list tries its entries in turn; leaving dead nodes out saves the waits.
        running = [node.bootstrap for node in self.kafka.nodes if node.running()]
        return ",".join(running) or self.bootstrap

    def kill(self, node_id: int) -> None:
        """SIGKILL one node: no controlled shutdown, its log recovered when it starts again."""
        self.kafka.node(node_id).kill()

    def stop(self, node_id: int) -> None:
        """A clean shutdown of one node (leadership handed over first)."""
        self.kafka.node(node_id).stop()

    def restart(self, node_id: int) -> None:
        """Start a stopped or killed node on the same ports and data; wait until it is a live broker again."""
        self.kafka.node(node_id).start(timeout_s=NODE_START_S)

    def wait_until_live(self, node_ids: Iterable[int], timeout_s: float = 60.0) -> None:
        """Wait until the metadata lists exactly `node_ids` as live brokers (a dead node is fenced after the
        broker session timeout)."""
        wanted = set(node_ids)
        wait_for(lambda: self.live() == wanted, f"live brokers {sorted(wanted)}", timeout_s)

    def wait_isr_full(self, topics: Iterable[str] | None = None, timeout_s: float = 120.0) -> None:
        """Wait until every partition of `topics` (of every topic with None) has a leader and all its replicas
        in sync: no partition under-replicated."""
        names = list(topics) if topics is not None else None

        def in_sync() -> bool:
            states = self.partitions(names)
            # A node that has not heard of a new topic yet describes none of its partitions, and all() of none is
            # True: the wait passed before the topic had a leader, and the caller found no partition to kill.
            return all(p.in_sync for p in states) and {p.topic for p in states} >= set(names or ())

        wait_for(in_sync, f"full ISR of {names or 'every topic'}", timeout_s)

    def heal(self) -> None:
        """Remove every toxic, bring every node that is down back and wait until all are live."""
        self.proxies.reset()
        for node in self.kafka.nodes:
            if not node.running():
                node.start(timeout_s=NODE_START_S)
        self.wait_until_live(self.node_ids())

    def close(self) -> None:
        """Stop every node and the proxy."""
        self.proxies.close()
        self.kafka.stop()
        self.toxiproxy.stop()


def start_controlled(stack: Stack) -> None:
    """`make up KAFKA_NODES=3`: start the stack's cluster (unless it runs) on its ports, behind fault proxies, and
    describe it under its directory, where the simulator's cluster faults find it (`SIMULATOR_CLUSTER_STATE`)."""
    kafka = stack.kafka
    if not isinstance(kafka, KafkaCluster) or kafka.running():
        return
    ports = [node.port for node in kafka.nodes]
    stack.kafka = ProxiedCluster.start(kafka.workdir, len(ports), ports=ports, kafka_dir=kafka.workdir).kafka
