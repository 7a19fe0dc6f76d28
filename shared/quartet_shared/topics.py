"""The topic registry: every topic Quartet uses, with its partitions, retention and compaction."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from quartet_shared.settings import KernelSettings

log = logging.getLogger(__name__)

RETRY_SUFFIX = ".retry"
DLQ_SUFFIX = ".dlq"
DEDUP_SUFFIX = ".dedup"


@dataclass(frozen=True)
class TopicSpec:
    """One topic: `partitions`/`retention_ms` of None take the settings' defaults."""

    name: str
    description: str
    partitions: int | None = None
    retention_ms: int | None = None
    compacted: bool = False
    with_retry_and_dlq: bool = False

    def config(self, settings: KernelSettings) -> dict[str, str]:
        """Broker-side topic configuration."""
        cfg = {"retention.ms": str(self.retention_ms or settings.topic_retention_ms)}
        if self.compacted:
            cfg["cleanup.policy"] = "compact"
        if settings.topic_replication_factor > 1:
            cfg["min.insync.replicas"] = str(min(2, settings.topic_replication_factor))
        return cfg


CORE_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("training.jobs", "Training jobs to run (TrainingRequested); key = job id.", with_retry_and_dlq=True),
    TopicSpec("training.control", "Cancellations for training jobs; key = job id.", partitions=1),
    TopicSpec("training.progress", "Per-epoch progress of training jobs; key = job id."),
    TopicSpec("training.results", "Exactly one outcome per training job; key = job id.", with_retry_and_dlq=True),
    TopicSpec("planning.jobs", "Path-planning jobs to run (PlanRequested); key = job id.", with_retry_and_dlq=True),
    TopicSpec("planning.control", "Cancellations for planning jobs; key = job id.", partitions=1),
    TopicSpec("planning.progress", "Per-iteration progress of planning jobs; key = job id."),
    TopicSpec("planning.results", "Exactly one outcome per planning job; key = job id.", with_retry_and_dlq=True),
    TopicSpec("rental.commands", "Commands for the rental manager; key = house id.", with_retry_and_dlq=True),
    TopicSpec("rental.events", "Rental state changes from the outbox; key = house id.", with_retry_and_dlq=True),
)


def expand(specs: Iterable[TopicSpec]) -> list[TopicSpec]:
    """The specs plus the `.retry` and `.dlq` companions of those that have them."""
    out: list[TopicSpec] = []
    for spec in specs:
        out.append(spec)
        if spec.with_retry_and_dlq:
            out.append(TopicSpec(spec.name + RETRY_SUFFIX, f"Delayed redelivery for {spec.name}.", spec.partitions))
            out.append(
                TopicSpec(
                    spec.name + DLQ_SUFFIX,
                    f"Dead letters of {spec.name}, with the reason in their headers.",
                    spec.partitions,
                    retention_ms=30 * 24 * 3600 * 1000,
                )
            )
    return out


def dedup_topic(topic: str, group: str) -> str:
    """The compacted changelog a transactional consumer group keeps of the ids it has processed on `topic`."""
    return f"{topic}.{group}{DEDUP_SUFFIX}"


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
