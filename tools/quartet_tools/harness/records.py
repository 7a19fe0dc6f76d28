"""Reading a topic as the contract's readers do: committed records only, every partition from its beginning."""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition
from quartet_shared.clients import wait_for_partitions
from quartet_shared.settings import KernelSettings


def committed_reader(settings: KernelSettings, topic: str) -> tuple[KafkaConsumer, list[TopicPartition]]:
    """A read_committed consumer assigned every partition of `topic` at its beginning, and those partitions."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        isolation_level="read_committed",
        reconnect_backoff_max_ms=1000,
    )
    try:
        partitions = wait_for_partitions(consumer, [topic])
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
    except BaseException:
        consumer.close()
        raise
    return consumer, partitions
