"""The topic catalogue: every topic Quartet uses, with its partitions, retention and compaction (no Kafka client)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

RETRY_SUFFIX = ".retry"
DLQ_SUFFIX = ".dlq"
DEDUP_SUFFIX = ".dedup"


class TopicDefaults(Protocol):
    """What a topic without its own partitions or retention takes (the runtime's settings provide these)."""

    @property
    def topic_partitions(self) -> int: ...
    @property
    def topic_replication_factor(self) -> int: ...
    @property
    def topic_retention_ms(self) -> int: ...


@dataclass(frozen=True)
class LocalTopicDefaults:
    """The defaults of a single local broker, for documents generated without a running system."""

    topic_partitions: int = 6
    topic_replication_factor: int = 1
    topic_retention_ms: int = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """One topic: `partitions`/`retention_ms` of None take the settings' defaults."""

    name: str
    description: str
    partitions: int | None = None
    retention_ms: int | None = None
    compacted: bool = False
    with_retry_and_dlq: bool = False

    def config(self, settings: TopicDefaults) -> dict[str, str]:
        """Broker-side topic configuration."""
        cfg = {"retention.ms": str(self.retention_ms or settings.topic_retention_ms)}
        if self.compacted:
            cfg["cleanup.policy"] = "compact"
        if settings.topic_replication_factor > 1:
            # An acks=all write then survives one replica's loss, and no out-of-sync replica may lead.
            cfg["min.insync.replicas"] = str(min(2, settings.topic_replication_factor))
            cfg["unclean.leader.election.enable"] = "false"
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
