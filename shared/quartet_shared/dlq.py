"""Dead-letter topics: list what is in `T.dlq` with its reasons, and replay it back onto `T`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from quartet_contracts.envelope import header_map
from quartet_contracts.topics import DLQ_SUFFIX

from quartet_shared.clients import kafka_consumer
from quartet_shared.consumer import H_ATTEMPTS, H_ERROR_MESSAGE, H_ERROR_TYPE, original_headers
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings


@dataclass(frozen=True)
class DeadLetter:
    """One record in a dead-letter topic, with the reason the kernel recorded."""

    offset: int
    partition: int
    key: str | None
    ce_id: str | None
    ce_type: str | None
    reason: dict[str, str]
    value_preview: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return self.__dict__.copy()


def _dlq_name(topic: str) -> str:
    return topic if topic.endswith(DLQ_SUFFIX) else topic + DLQ_SUFFIX


def _reader(settings: KernelSettings, group: str | None) -> KafkaConsumer:
    return kafka_consumer(settings, group_id=group, auto_offset_reset="earliest")


def _drain(consumer: KafkaConsumer, partitions: list[TopicPartition]) -> list[Any]:
    """Every record from the current positions up to the end offsets as they were when we started."""
    end = consumer.end_offsets(partitions)
    out: list[Any] = []
    while any(consumer.position(tp) < end[tp] for tp in partitions):
        for records in consumer.poll(timeout_ms=1000).values():
            out.extend(records)
    return sorted(out, key=lambda r: (r.partition, r.offset))


def list_dead_letters(settings: KernelSettings, topic: str) -> list[DeadLetter]:
    """Every record in `topic`'s dead-letter topic, oldest first per partition."""
    dlq = _dlq_name(topic)
    consumer = _reader(settings, None)
    try:
        parts = consumer.partitions_for_topic(dlq) or set()
        tps = [TopicPartition(dlq, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        letters = []
        for rec in _drain(consumer, tps):
            h = header_map(rec.headers)
            letters.append(
                DeadLetter(
                    offset=rec.offset,
                    partition=rec.partition,
                    key=rec.key.decode("utf-8", "replace") if rec.key is not None else None,
                    ce_id=h["ce_id"].decode("utf-8", "replace") if "ce_id" in h else None,
                    ce_type=h["ce_type"].decode("utf-8", "replace") if "ce_type" in h else None,
                    reason={k: v.decode("utf-8", "replace") for k, v in h.items() if k.startswith("dlq_")},
                    value_preview=(rec.value or b"")[:200].decode("utf-8", "replace"),
                )
            )
        return letters
    finally:
        consumer.close()


def replay_dead_letters(settings: KernelSettings, topic: str) -> int:
    """Send every dead letter not yet replayed back to its original topic, as it first came; returns the count.

    A consumer group per dead-letter topic remembers how far replays got, so replaying twice sends nothing
    twice; handlers are idempotent besides.
    """
    dlq = _dlq_name(topic)
    group = f"quartet-dlq-replay.{dlq}"
    consumer = _reader(settings, group)
    producer = Producer(settings)
    try:
        parts = consumer.partitions_for_topic(dlq) or set()
        tps = [TopicPartition(dlq, p) for p in sorted(parts)]
        if not tps:
            return 0
        consumer.assign(tps)
        for tp in tps:
            committed = consumer.committed(tp)
            if committed is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
        records = _drain(consumer, tps)
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for rec in records:
            original = header_map(rec.headers).get("dlq_original_topic", b"").decode() or dlq.removesuffix(DLQ_SUFFIX)
            producer.send_raw(original, rec.key, rec.value, original_headers(rec.headers))
            offsets[TopicPartition(dlq, rec.partition)] = OffsetAndMetadata(rec.offset + 1, "", -1)
        producer.flush()
        if offsets:
            consumer.commit(offsets)
        return len(records)
    finally:
        producer.close()
        consumer.close()


__all__ = ["H_ATTEMPTS", "H_ERROR_MESSAGE", "H_ERROR_TYPE", "DeadLetter", "list_dead_letters", "replay_dead_letters"]
