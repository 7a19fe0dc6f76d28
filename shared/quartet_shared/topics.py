"""Creating the catalogue's topics on a broker, and waiting until a client sees their partitions."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from quartet_contracts.topics import TopicSpec

from quartet_shared.clients import KAFKA, KafkaClients
from quartet_shared.settings import KernelSettings

log = logging.getLogger(__name__)


def ensure_topics(settings: KernelSettings, specs: Iterable[TopicSpec], *, clients: KafkaClients = KAFKA) -> list[str]:
    """Create the topics that are missing (harmless if they exist) and return the names created."""
    wanted = list(specs)
    admin = clients.admin(settings, client_id="quartet-topics")
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(
                s.name,
                s.partitions or settings.topic_partitions,
                settings.topic_replication_factor,
                topic_configs=s.config(settings),
            )
            for s in wanted
            if s.name not in existing
        ]
        created: list[str] = []
        for topic in new:
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                log.debug("topic %s was created concurrently", topic.name)
        if created:
            log.info("created topics", extra={"topics": created})
        return created
    finally:
        admin.close()


@dataclass(frozen=True)
class PartitionState:
    """One partition as the cluster's metadata describes it: its leader (-1 while it has none) and replicas."""

    topic: str
    partition: int
    leader: int
    replicas: frozenset[int]
    isr: frozenset[int]

    @property
    def in_sync(self) -> bool:
        """Led, with every replica in sync (not under-replicated)."""
        return self.leader >= 0 and self.isr == self.replicas


def describe_partitions(
    settings: KernelSettings, topics: Iterable[str] | None = None, *, clients: KafkaClients = KAFKA
) -> list[PartitionState]:
    """Every partition of `topics` (of every topic with None), by topic and partition, from the admin metadata."""
    admin = clients.admin(settings, request_timeout_ms=5000)
    try:
        described = admin.describe_topics(list(topics) if topics is not None else None)
    finally:
        admin.close()
    return sorted(
        (
            PartitionState(
                str(topic["name"]),
                int(p["partition_index"]),
                int(p["leader_id"]),
                frozenset(int(n) for n in p["replica_nodes"]),
                frozenset(int(n) for n in p["isr_nodes"]),
            )
            for topic in described
            for p in topic["partitions"]
        ),
        key=lambda p: (p.topic, p.partition),
    )


def main_leader(partitions: Iterable[PartitionState]) -> int | None:
    """The node leading the most of these partitions (the lowest id on a tie); None when none is led."""
    counts = Counter(p.leader for p in partitions if p.leader >= 0)
    if not counts:
        return None
    return min(counts, key=lambda node: (-counts[node], node))


def main() -> None:
    """`quartet-topics`: create the catalogue's missing topics; the one-shot step images run before the services."""
    from quartet_contracts.topics import CORE_TOPICS, expand

    from quartet_shared.logs import configure_logging

    settings = KernelSettings()
    configure_logging(settings.log_level, service="quartet-topics")
    created = ensure_topics(settings, expand(CORE_TOPICS))
    print(json.dumps({"bootstrap_servers": settings.kafka_bootstrap_servers, "created": created}))
