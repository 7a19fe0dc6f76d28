"""A private 3-node Kafka cluster for the fault tests: who leads what, kill a node, bring it back, wait for ISR."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka.admin import KafkaAdminClient
from quartet_contracts.topics import TopicSpec
from quartet_shared.net import free_port
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics
from quartet_tools.infra import KafkaCluster, broker_settings, live_brokers, wait_for
from quartet_tools.toxiproxy import Stream, ToxiproxyClient, ToxiproxyServer

NODES = 3
# Long enough for a JVM to start on two cores shared with other runs (a cluster has taken 35 s alone).
NODE_START_S = 180.0
TRANSACTION_STATE_PARTITIONS = int(broker_settings("127.0.0.1", 1, 2)["transaction.state.log.num.partitions"])


def _admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, client_id="quartet-test-cluster")


@dataclass
class ClusterServers:
    """Three combined KRaft nodes on free ports under a private directory, each behind its own Toxiproxy proxy
    (`proxy(node_id)`, which the node advertises), and what fault tests do to them. Each node has a second client
    listener behind a proxy of its own (`side_proxy`): a client on `side_bootstrap` can be cut off alone."""

    kafka: KafkaCluster
    toxiproxy: ToxiproxyServer
    proxies: ToxiproxyClient

    @classmethod
    def start(cls, workdir: Path) -> ClusterServers:
        """Start the proxy and the nodes; wait until the cluster takes acks=all writes replicated on all three."""
        toxiproxy = ToxiproxyServer("toxiproxy", free_port(), workdir / "toxiproxy")
        toxiproxy.start()
        proxies = toxiproxy.client()
        ports = [free_port() for _ in range(NODES)]
        advertised = [proxies.create_proxy(f"kafka-{i}", f"127.0.0.1:{port}") for i, port in enumerate(ports, 1)]
        side_ports = [free_port() for _ in range(NODES)]
        sides = [
            (port, proxies.create_proxy(cls.side_proxy(i), f"127.0.0.1:{port}")) for i, port in enumerate(side_ports, 1)
        ]
        kafka = KafkaCluster.at(workdir / "kafka", ports, advertised_ports=advertised, sides=sides)
        try:
            kafka.start(timeout_s=NODE_START_S)
        except BaseException:
            kafka.stop()
            toxiproxy.stop()
            raise
        return cls(kafka, toxiproxy, proxies)

    @property
    def bootstrap(self) -> str:
        """Every node, as a comma list."""
        return self.kafka.bootstrap

    @property
    def side_bootstrap(self) -> str:
        """Every node's second listener through its side proxy: a client bootstrapped here stays on them."""
        return ",".join(f"127.0.0.1:{node.side[1]}" for node in self.kafka.nodes if node.side)

    @staticmethod
    def side_proxy(node_id: int) -> str:
        """The name of the proxy in front of a node's second client listener."""
        return f"side-kafka-{node_id}"

    def cut_side(self) -> None:
        """Black-hole every side proxy: whoever bootstrapped on `side_bootstrap` is partitioned from the cluster
        (its requests are held, nothing answers, no connection closes); `heal` or `proxies.reset` ends it."""
        for node in self.kafka.nodes:
            streams: tuple[Stream, ...] = ("upstream", "downstream")
            for stream in streams:
                self.proxies.add_toxic(
                    self.side_proxy(node.node_id), f"cut-{stream}", "timeout", {"timeout": 0}, stream
                )

    @staticmethod
    def proxy(node_id: int) -> str:
        """The name of the Toxiproxy proxy in front of a node: every client and replica connection goes through it."""
        return f"kafka-{node_id}"

    def settings(self, **overrides: Any) -> KernelSettings:
        """Kernel settings pointed at the cluster, creating topics replicated three times (min ISR 2)."""
        return KernelSettings(
            kafka_bootstrap_servers=self.bootstrap,
            topic_replication_factor=NODES,
            topic_partitions=3,
            service_name="test",
            transaction_timeout_ms=15_000,
            **overrides,
        )

    def new_topic(self, name: str, partitions: int | None = None) -> str:
        """Create `name` as the kernel does on the cluster (RF 3, min ISR 2) and wait until every replica is in sync."""
        ensure_topics(self.settings(), [TopicSpec(name, "", partitions=partitions)])
        self.wait_isr_full([name])
        return name

    def partitions(self, topic: str) -> list[dict[str, Any]]:
        """The topic's partitions as the metadata describes them (leader_id, replica_nodes, isr_nodes)."""
        admin = _admin(self._live_bootstrap())
        try:
            (described,) = admin.describe_topics([topic])
        finally:
            admin.close()
        return sorted(described["partitions"], key=lambda p: int(p["partition_index"]))

    def leader(self, topic: str, partition: int = 0) -> int:
        """The node id that leads `partition` of `topic` now (-1 while it has none)."""
        return int(self.partitions(topic)[partition]["leader_id"])

    def transaction_coordinator(self, transactional_id: str) -> int:
        """The node coordinating `transactional_id`'s transactions: the leader of its `__transaction_state` partition.

        Kafka picks that partition as abs(the id's Java hashCode) modulo the log's partitions.
        """
        code = 0
        for unit in transactional_id.encode("utf-16-be").hex(" ", 2).split():
            code = (31 * code + int(unit, 16)) & 0xFFFFFFFF
        signed = code - (1 << 32) if code >= 1 << 31 else code
        partition = (0 if signed == -(1 << 31) else abs(signed)) % TRANSACTION_STATE_PARTITIONS
        return self.leader("__transaction_state", partition)

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

    def wait_isr_full(self, topics: Iterable[str], timeout_s: float = 120.0) -> None:
        """Wait until every partition of `topics` has all its replicas in sync and a leader."""
        names = list(topics)

        def full() -> bool:
            return all(
                int(p["leader_id"]) >= 0 and set(p["isr_nodes"]) == set(p["replica_nodes"])
                for topic in names
                for p in self.partitions(topic)
            )

        wait_for(full, f"full ISR of {names}", timeout_s)

    def heal(self) -> None:
        """Remove every toxic, bring every node that is down back and wait until all are live: each test starts
        from a whole cluster."""
        self.proxies.reset()
        for node in self.kafka.nodes:
            if not node.running():
                node.start(timeout_s=NODE_START_S)
        self.wait_until_live(node.node_id for node in self.kafka.nodes)

    def close(self) -> None:
        """Stop every node and the proxy."""
        self.proxies.close()
        self.kafka.stop()
        self.toxiproxy.stop()
