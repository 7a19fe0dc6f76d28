"""The one place Kafka clients are built, and the one wait for a topic's partitions to be visible.

Every client starts from the same base (bootstrap servers, TLS/SASL options, a client id, a short reconnect
backoff) so that a setting added for one is never missing from another. Code that builds clients takes a
`KafkaClients` port (default `KAFKA`, the real servers), so a test can hand it an in-memory broker instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from quartet_shared.runner.kafka_compat import SenderClient
from quartet_shared.settings import KernelSettings

# kafka-python's default 30 s ceiling leaves a client idle long after a restarted broker is back.
# retry_backoff_ms (100 ms) and metadata_max_age_ms (5 min) stay kafka-python's: a dead leader's refused
# connection or a NotLeader error already asks for fresh metadata at once, retried every 100 ms, and until the
# controller fences the dead node (the brokers' session, `quartet_tools.infra.broker_settings`) any metadata
# still names it, so refreshing more often would not find the new leader sooner.
RECONNECT_BACKOFF_MAX_MS = 1000


def _base(settings: KernelSettings, overrides: dict[str, Any]) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "client_id": f"{settings.service_name}-{settings.instance_id}",
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
        **settings.kafka_client_options(),
    }
    cfg.update(overrides)
    return cfg


def producer_config(settings: KernelSettings, **overrides: Any) -> dict[str, Any]:
    """The kafka-python producer configuration every Quartet producer starts from."""
    return _base(
        settings,
        {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": settings.producer_linger_ms,
            "request_timeout_ms": settings.request_timeout_ms,
            # Retries stay inside the delivery timeout; the idempotent producer keeps them free of duplicates.
            "delivery_timeout_ms": max(120_000, settings.request_timeout_ms + settings.producer_linger_ms),
            "max_block_ms": settings.request_timeout_ms,
            # Retries a transactional request whose coordinator died, instead of dropping it (see SenderClient).
            "kafka_client": SenderClient,
            **overrides,
        },
    )


def kafka_producer(settings: KernelSettings, **overrides: Any) -> KafkaProducer:
    """A raw idempotent, acks=all producer (most code wants `quartet_shared.producer.Producer` instead)."""
    return KafkaProducer(**producer_config(settings, **overrides))


def kafka_consumer(settings: KernelSettings, **overrides: Any) -> KafkaConsumer:
    """A consumer that commits only when told and reads only committed transactions (unless overridden)."""
    return KafkaConsumer(
        **_base(settings, {"enable_auto_commit": False, "isolation_level": "read_committed", **overrides})
    )


def kafka_admin(settings: KernelSettings, **overrides: Any) -> KafkaAdminClient:
    """An admin client."""
    return KafkaAdminClient(**_base(settings, overrides))


class KafkaClients(Protocol):
    """The port every Kafka client is built through: the real servers, or a test's in-memory broker."""

    def producer(self, settings: KernelSettings, **overrides: Any) -> KafkaProducer:
        """A raw producer, as `kafka_producer` builds it."""

    def consumer(self, settings: KernelSettings, **overrides: Any) -> KafkaConsumer:
        """A consumer, as `kafka_consumer` builds it."""

    def admin(self, settings: KernelSettings, **overrides: Any) -> KafkaAdminClient:
        """An admin client, as `kafka_admin` builds it."""


class KafkaServers:
    """Clients of the Kafka servers the settings name."""

    def producer(self, settings: KernelSettings, **overrides: Any) -> KafkaProducer:
        """A raw idempotent, acks=all producer."""
        return kafka_producer(settings, **overrides)

    def consumer(self, settings: KernelSettings, **overrides: Any) -> KafkaConsumer:
        """A read_committed consumer that commits only when told."""
        return kafka_consumer(settings, **overrides)

    def admin(self, settings: KernelSettings, **overrides: Any) -> KafkaAdminClient:
        """An admin client."""
        return kafka_admin(settings, **overrides)


KAFKA: KafkaClients = KafkaServers()


def wait_for_partitions(
    consumer: KafkaConsumer,
    topics: Iterable[str],
    timeout_s: float = 30.0,
    *,
    stop: threading.Event | None = None,
) -> list[TopicPartition]:
    """Every partition of `topics`, refreshing `consumer`'s metadata until each topic shows its partitions.

    A topic created a moment ago may be missing from a client's metadata until its next refresh (minutes);
    raises LookupError naming the topic when it has no partitions after `timeout_s`, or once `stop` is set.
    """
    deadline = time.monotonic() + timeout_s
    out: list[TopicPartition] = []
    for topic in topics:
        parts = consumer.partitions_for_topic(topic)
        while not parts and time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            time.sleep(0.2)
            consumer.topics()
            parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise LookupError(f"topic {topic} does not exist (or has no partitions) on the broker")
        out += [TopicPartition(topic, p) for p in sorted(parts)]
    return out


def partition_counts(
    settings: KernelSettings, topics: Iterable[str], timeout_s: float = 30.0, *, clients: KafkaClients = KAFKA
) -> dict[str, int]:
    """How many partitions each topic has, waiting (up to `timeout_s`) for new ones to become visible."""
    probe = clients.consumer(settings)
    try:
        counts: dict[str, int] = {}
        for tp in wait_for_partitions(probe, topics, timeout_s):
            counts[tp.topic] = counts.get(tp.topic, 0) + 1
        return counts
    finally:
        probe.close()


__all__ = [
    "KAFKA",
    "RECONNECT_BACKOFF_MAX_MS",
    "KafkaClients",
    "KafkaServers",
    "kafka_admin",
    "kafka_consumer",
    "kafka_producer",
    "partition_counts",
    "producer_config",
    "wait_for_partitions",
]
