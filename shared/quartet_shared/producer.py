"""The idempotent producer: acks=all, a confirmed send for APIs, flush on close."""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata

from quartet_shared.envelope import Envelope
from quartet_shared.metrics import PRODUCED
from quartet_shared.settings import KernelSettings

log = logging.getLogger(__name__)

RECONNECT_BACKOFF_MAX_MS = 1000


def producer_config(settings: KernelSettings, **overrides: Any) -> dict[str, Any]:
    """The kafka-python producer configuration every Quartet producer starts from."""
    cfg: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "client_id": f"{settings.service_name}-{settings.instance_id}",
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": settings.producer_linger_ms,
        "request_timeout_ms": settings.request_timeout_ms,
        # Retries stay inside the delivery timeout; the idempotent producer keeps them free of duplicates.
        "delivery_timeout_ms": max(120_000, settings.request_timeout_ms + settings.producer_linger_ms),
        "max_block_ms": settings.request_timeout_ms,
        # kafka-python's default 30 s ceiling leaves a client idle long after a restarted broker is back.
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
        **settings.kafka_client_options(),
    }
    cfg.update(overrides)
    return cfg


class Producer:
    """Sends envelopes with an idempotent, acks=all KafkaProducer."""

    def __init__(self, settings: KernelSettings, **overrides: Any) -> None:
        self._producer = KafkaProducer(**producer_config(settings, **overrides))

    @property
    def raw(self) -> KafkaProducer:
        """The underlying KafkaProducer (for transactions)."""
        return self._producer

    def send(self, topic: str, envelope: Envelope, *, partition: int | None = None) -> FutureRecordMetadata:
        """Queue an envelope; the future resolves when the broker has it."""
        key, value, headers = envelope.to_kafka()
        future = self._producer.send(topic, key=key, value=value, headers=headers, partition=partition)
        future.add_callback(_count, topic)
        return future

    def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
        *,
        partition: int | None = None,
    ) -> FutureRecordMetadata:
        """Queue an already-encoded record (dead letters and replays keep their bytes as they were)."""
        future = self._producer.send(topic, key=key, value=value, headers=headers, partition=partition)
        future.add_callback(_count, topic)
        return future

    def send_confirmed(self, topic: str, envelope: Envelope, timeout_s: float | None = None) -> Any:
        """Send and wait for the broker's acks=all acknowledgement; raises if it does not come."""
        return self.send(topic, envelope).get(timeout=timeout_s)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until everything queued is acknowledged."""
        self._producer.flush(timeout=timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush and close."""
        try:
            self._producer.flush(timeout=timeout_s)
        finally:
            self._producer.close(timeout=timeout_s)


_PRODUCED_BY_TOPIC: dict[str, Any] = {}


def _count(_metadata: Any, topic: str) -> None:
    # Runs on the producer's I/O thread once per record: resolve each topic's child counter once.
    child = _PRODUCED_BY_TOPIC.get(topic)
    if child is None:
        child = _PRODUCED_BY_TOPIC.setdefault(topic, PRODUCED.labels(topic))
    child.inc()
