"""Skipping ids already done: the Redis fast path (at-least-once) and the committed changelog (transactional).

At least once, handlers make their effect durable themselves and Redis only remembers, after each commit,
which ids are done, so that a redelivered batch is skipped in one round trip. In transactional mode each batch's
done ids are written to a compacted changelog topic inside the batch's transaction, and a newly assigned
partition's ids are read back from it: what it holds is exactly what was committed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from quartet_contracts.topics import RETRY_SUFFIX, TopicSpec, dedup_topic

from quartet_shared.cache import DedupCache, ResilientRedis
from quartet_shared.clients import KAFKA, KafkaClients, partition_counts
from quartet_shared.producer import Producer
from quartet_shared.runner.model import base_partition, ids_of
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics

log = logging.getLogger(__name__)


def _none_known() -> set[str]:
    return set()


class RedisDedup:
    """The ids a group has finished, as far as Redis knows (a fast path, never the proof)."""

    def __init__(self, redis: ResilientRedis | None, group: str, ttl_s: int) -> None:
        self._cache = DedupCache(redis, group, ttl_s) if redis is not None else None

    def lookup(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> Callable[[], set[str]]:
        """Ask about a batch's ids now (one round trip); the returned call reads the answer."""
        return self._cache.lookup(ids_of(batch)) if self._cache is not None else _none_known

    def remember(self, ids: list[str]) -> None:
        """Record ids whose effects are durable."""
        if self._cache is not None and ids:
            self._cache.remember(ids)

    def close(self) -> None:
        """Release the connection."""
        if self._cache is not None:
            self._cache.close()


class Changelog:
    """The processed ids of each assigned base partition, restored from and recorded to its changelog topic."""

    def __init__(self, settings: KernelSettings, group: str, clients: KafkaClients = KAFKA) -> None:
        self.settings = settings
        self.group = group
        self._clients = clients
        self._seen: dict[TopicPartition, set[str]] = {}

    def prepare_topics(self, topics: Iterable[str]) -> None:
        """Create each base topic's changelog with as many partitions as the most partitioned of its topics."""
        counts = partition_counts(self.settings, list(topics), clients=self._clients)
        bases = sorted({t.removesuffix(RETRY_SUFFIX) for t in counts})
        ensure_topics(
            self.settings,
            [
                TopicSpec(
                    dedup_topic(b, self.group),
                    f"processed ids of {self.group} on {b} and its retries",
                    partitions=max(n for t, n in counts.items() if t.removesuffix(RETRY_SUFFIX) == b),
                    retention_ms=self.settings.dedup_retention_ms,
                )
                for b in bases
            ],
            clients=self._clients,
        )

    def seen(self, tp: TopicPartition) -> set[str] | None:
        """The ids done on `tp`'s base partition (None when it is not assigned)."""
        return self._seen.get(base_partition(tp))

    def assigned(self, partitions: Iterable[TopicPartition], progress: Callable[[], None]) -> None:
        """Restore each newly assigned base partition's ids, calling `progress` after each."""
        for tp in {base_partition(tp) for tp in partitions}:
            self._seen[tp] = self._restore(tp)
            progress()

    def revoked(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget partitions this member no longer owns."""
        for tp in partitions:
            self._seen.pop(base_partition(tp), None)

    def clear(self) -> None:
        """Forget everything (the consumer was dropped)."""
        self._seen.clear()

    def publish(self, producer: Producer, records: list[tuple[TopicPartition, str]]) -> dict[TopicPartition, set[str]]:
        """Send a batch's done ids into its open transaction; returns them by base partition for `applied`."""
        grouped: dict[TopicPartition, set[str]] = defaultdict(set)
        for tp, message_id in records:
            grouped[tp].add(message_id)
        for base, ids in grouped.items():
            # One changelog record per partition per transaction: half the sends of one per id.
            value = "\n".join(sorted(ids)).encode()
            producer.send_raw(dedup_topic(base.topic, self.group), None, value, [], partition=base.partition)
        return grouped

    def applied(self, grouped: dict[TopicPartition, set[str]]) -> None:
        """Take a committed transaction's ids into the partitions still assigned."""
        for tp, ids in grouped.items():
            seen = self._seen.get(tp)
            if seen is not None:
                seen.update(ids)

    def _restore(self, tp: TopicPartition) -> set[str]:
        """Rebuild a base partition's processed ids (its own and its retries') from the committed changelog."""
        changelog = TopicPartition(dedup_topic(tp.topic, self.group), tp.partition)
        reader = self._clients.consumer(self.settings)
        try:
            reader.assign([changelog])
            reader.seek_to_beginning(changelog)
            end = reader.end_offsets([changelog])[changelog]
            ids: set[str] = set()
            while reader.position(changelog) < end:
                for records in reader.poll(timeout_ms=500).values():
                    for r in records:
                        ids.update(i for i in (r.value or b"").decode().split("\n") if i)
            return ids
        finally:
            reader.close()
