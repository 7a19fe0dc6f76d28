"""Creating the catalogue's topics on a broker, and waiting until a client sees their partitions."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError
from quartet_contracts.topics import TopicSpec

from quartet_shared.settings import KernelSettings

log = logging.getLogger(__name__)


def ensure_topics(settings: KernelSettings, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the topics that are missing (harmless if they exist) and return the names created."""
    wanted = list(specs)
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="quartet-topics",
        **settings.kafka_client_options(),
    )
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


def wait_for_partitions(
    consumer: KafkaConsumer, topics: Iterable[str], timeout_s: float = 30.0
) -> list[TopicPartition]:
    """Every partition of `topics`, refreshing `consumer`'s metadata until each topic shows its partitions.

    A topic created a moment ago may be missing from a client's metadata until its next refresh; raises
    LookupError naming the topic when it has no partitions after `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    out: list[TopicPartition] = []
    for topic in topics:
        parts = consumer.partitions_for_topic(topic)
        while not parts and time.monotonic() < deadline:
            time.sleep(0.2)
            consumer.topics()
            parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise LookupError(f"topic {topic} does not exist (or has no partitions) on the broker")
        out += [TopicPartition(topic, p) for p in sorted(parts)]
    return out
