"""A private 3-node Kafka cluster for the fault tests and the benches: the tooling's proxied cluster, plus who leads
what, the transaction coordinator of an id, and topics created as the kernel creates them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError
from quartet_contracts.topics import TopicSpec
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics

from quartet_tools.cluster import NODES, ProxiedCluster
from quartet_tools.infra import broker_settings, wait_for

TRANSACTION_STATE_PARTITIONS = int(broker_settings("127.0.0.1", 1, 2)["transaction.state.log.num.partitions"])
OFFSETS_PARTITIONS = int(broker_settings("127.0.0.1", 1, 2)["offsets.topic.num.partitions"])


def coordinator_partition(key: str, partitions: int) -> int:
    """The internal topic's partition Kafka gives `key`: abs(its Java hashCode) modulo the topic's partitions."""
    code = 0
    for unit in key.encode("utf-16-be").hex(" ", 2).split():
        code = (31 * code + int(unit, 16)) & 0xFFFFFFFF
    signed = code - (1 << 32) if code >= 1 << 31 else code
    return (0 if signed == -(1 << 31) else abs(signed)) % partitions


class ClusterServers(ProxiedCluster):
    """Three combined KRaft nodes behind their proxies (see `ProxiedCluster`), with the tests' and benches' settings."""

    @classmethod
    def start(
        cls, workdir: Path, nodes: int = NODES, ports: list[int] | None = None, kafka_dir: Path | None = None
    ) -> ClusterServers:
        """Start the proxy and the nodes; wait until the cluster takes acks=all writes replicated on all three."""
        started = ProxiedCluster.start(workdir, nodes, ports, kafka_dir)
        return cls(started.kafka, started.toxiproxy, started.proxies)

    def settings(self, **overrides: Any) -> KernelSettings:
        """Kernel settings pointed at the cluster, creating topics replicated three times (min ISR 2)."""
        test: dict[str, Any] = {"topic_partitions": 3, "service_name": "test", "transaction_timeout_ms": 15_000}
        return super().settings(**{**test, **overrides})

    def new_topic(self, name: str, partitions: int | None = None) -> str:
        """Create `name` as the kernel does on the cluster (RF 3, min ISR 2) and wait until every replica is in sync."""
        ensure_topics(self.settings(), [TopicSpec(name, "", partitions=partitions)])
        self.wait_isr_full([name])
        return name

    def leader(self, topic: str, partition: int = 0) -> int:
        """The node id that leads `partition` of `topic` now (-1 while it has none)."""
        return next(p.leader for p in self.partitions([topic]) if p.partition == partition)

    def transaction_coordinator(self, transactional_id: str) -> int:
        """The node coordinating `transactional_id`'s transactions: the leader of its `__transaction_state` part."""
        return self.leader("__transaction_state", coordinator_partition(transactional_id, TRANSACTION_STATE_PARTITIONS))

    def coordinator_logs(self) -> tuple[list[int], list[int]]:
        """The leader of each partition of `__transaction_state` and of `__consumer_offsets`, by partition; Kafka
        creates each log when a client first looks for a coordinator, so a fresh cluster is asked once here."""

        def leaders(topic: str, count: int) -> list[int]:
            try:
                found = [p.leader for p in self.partitions([topic])]
            except KafkaError:
                return []
            return found if len(found) == count and min(found) >= 0 else []

        if not leaders("__transaction_state", TRANSACTION_STATE_PARTITIONS):
            producer = KafkaProducer(bootstrap_servers=self.bootstrap, transactional_id="quartet-test-coordinators")
            try:
                producer.init_transactions()
            finally:
                producer.close(timeout=5)
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)

        def offsets_log() -> bool:
            admin.describe_groups(["quartet-test-coordinators"])  # looks for the group's coordinator
            return bool(leaders("__consumer_offsets", OFFSETS_PARTITIONS))

        try:
            wait_for(offsets_log, "the coordinators' logs", 120)
        finally:
            admin.close()
        return leaders("__transaction_state", TRANSACTION_STATE_PARTITIONS), leaders(
            "__consumer_offsets", OFFSETS_PARTITIONS
        )
