"""What happens to a record that fails: inline backoff, the retry topic and its pauses, the dead-letter topic.

Transient failures are retried inline with exponential backoff, then through `T.retry` (a retry partition is
paused until its head record is due, so delays never block other topics), and poison records go to `T.dlq`
with their reason, so one bad record never stalls its partition.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from quartet_contracts.envelope import Envelope, header_map
from quartet_contracts.topics import DLQ_SUFFIX, RETRY_SUFFIX

from quartet_shared.metrics import DEAD_LETTERS
from quartet_shared.runner.commit import CommitProtocol
from quartet_shared.runner.kafka_compat import drop_parked, resume
from quartet_shared.runner.model import (
    H_ATTEMPT,
    H_ATTEMPTS,
    H_DLQ_FIRST,
    H_DLQ_LAST,
    H_ERROR_MESSAGE,
    H_ERROR_TYPE,
    H_FIRST_FAILURE,
    H_GROUP,
    H_NOT_BEFORE,
    H_ORIGINAL_OFFSET,
    H_ORIGINAL_PARTITION,
    H_ORIGINAL_TOPIC,
    BatchState,
    DeadLetter,
    Failure,
    Subscription,
    backoff_delay,
    now_iso,
    original_headers,
)
from quartet_shared.settings import KernelSettings

log = logging.getLogger(__name__)


class Failures:
    """Retries and dead letters for one runner."""

    def __init__(
        self,
        settings: KernelSettings,
        group: str,
        protocol: CommitProtocol,
        subscription: Callable[[str], Subscription[Any] | None],
    ) -> None:
        self.settings = settings
        self.group = group
        self._protocol = protocol
        self._subscription = subscription

    def backoff(self, attempt: int) -> float:
        """How long to wait before `attempt` + 1."""
        return backoff_delay(attempt, self.settings.retry_backoff_base_s, self.settings.retry_backoff_max_s)

    def retry_inline_in(self, attempt: int, inline_left: int, stopping: threading.Event) -> float | None:
        """Seconds to wait before retrying a failed attempt in place; None when it goes on (retry topic or DLQ)."""
        if not inline_left or attempt >= self.settings.max_attempts or stopping.is_set():
            return None
        return self.backoff(attempt)

    def settle(self, rec: ConsumerRecord, base_topic: str, failure: Failure, retry: bool, state: BatchState) -> None:
        """Send a record whose attempts are over to the retry topic, or to the dead-letter topic for good."""
        if failure.permanent or failure.attempts >= self.settings.max_attempts or not retry:
            self.dead_letter(rec, base_topic, failure.error, failure.attempts, failure.first_failure, state=state)
        else:
            self.schedule_retry(rec, base_topic, failure)

    def schedule_retry(self, rec: ConsumerRecord, base_topic: str, failure: Failure) -> None:
        """Send the record to `T.retry` with its attempt count and when it is due."""
        delay = self.backoff(failure.attempts)
        headers = original_headers(rec.headers) + [
            (H_ATTEMPT, str(failure.attempts).encode()),
            (H_NOT_BEFORE, str(int((time.time() + delay) * 1000)).encode()),
            (H_FIRST_FAILURE, failure.first_failure.encode()),
            (H_ERROR_TYPE, type(failure.error).__name__.encode()),
            (H_ERROR_MESSAGE, str(failure.error)[:2000].encode()),
        ]
        self._protocol.producer.send_raw(base_topic + RETRY_SUFFIX, rec.key, rec.value, headers)

    def dead_letter(
        self,
        rec: ConsumerRecord,
        base_topic: str,
        error: BaseException,
        attempts: int,
        first_failure: str | None = None,
        *,
        finalize: bool = True,
        state: BatchState | None = None,
    ) -> None:
        """Send the record to `T.dlq` with its reason, and its subscription's hook's answer beside it."""
        now = now_iso()
        headers = original_headers(rec.headers) + [
            (H_ERROR_TYPE, type(error).__name__.encode()),
            (H_ERROR_MESSAGE, str(error)[:4000].encode("utf-8", "replace")),
            (H_ATTEMPTS, str(attempts).encode()),
            (H_ORIGINAL_TOPIC, base_topic.encode()),
            (H_ORIGINAL_PARTITION, str(rec.partition).encode()),
            (H_ORIGINAL_OFFSET, str(rec.offset).encode()),
            (H_DLQ_FIRST, (first_failure or now).encode()),
            (H_DLQ_LAST, now.encode()),
            (H_GROUP, self.group.encode()),
        ]
        if rec.topic != base_topic:
            headers.append(("dlq_via_topic", rec.topic.encode()))
        self._protocol.producer.send_raw(base_topic + DLQ_SUFFIX, rec.key, rec.value, headers)
        letter = DeadLetter(rec, error, attempts)
        answered = finalize and self._finalize(letter, base_topic)
        if answered and state is not None and letter.event_id is not None:
            self._protocol.answered(TopicPartition(base_topic, rec.partition), letter.event_id, state)
        DEAD_LETTERS.labels(self.group, base_topic, type(error).__name__).inc()
        log.warning(
            "dead-lettered",
            extra={
                "group": self.group,
                "topic": base_topic,
                "offset": rec.offset,
                "error": f"{type(error).__name__}: {error}",
            },
        )

    def _finalize(self, letter: DeadLetter, base_topic: str) -> bool:
        """Run the subscription's dead-letter hook and send what it emits beside the dead letter; whether it did."""
        sub = self._subscription(base_topic)
        hook = sub.on_dead_letter if sub is not None else None
        if hook is None:
            return False
        emitted: list[tuple[str, Envelope]] = []
        try:
            hook(letter, lambda topic, envelope: emitted.append((topic, envelope)))
            for topic, envelope in emitted:
                self._protocol.producer.send(topic, envelope)
        except Exception:
            # The dead letter still goes: it is the record of what happened, the hook's answer a courtesy.
            log.exception("a dead-letter hook failed", extra={"group": self.group, "topic": base_topic})
            return False
        return bool(emitted)


class RetryPauses:
    """Retry partitions paused until their head record is due."""

    def __init__(self) -> None:
        self._until: dict[TopicPartition, float] = {}

    def defer_if_early(self, consumer: KafkaConsumer, tp: TopicPartition, rec: ConsumerRecord) -> bool:
        """Pause a retry partition (rewound to `rec`) until `rec` is due; whether it was early."""
        due_ms = int(header_map(rec.headers).get(H_NOT_BEFORE, b"0") or 0)
        wait = due_ms / 1000 - time.time()
        if wait <= 0:
            return False
        consumer.seek(tp, rec.offset)
        consumer.pause(tp)
        self._until[tp] = time.monotonic() + wait
        return True

    def resume_due(self, consumer: KafkaConsumer | None) -> None:
        """Resume the partitions whose head record is due now."""
        if not self._until or consumer is None:
            return
        now = time.monotonic()
        due = [tp for tp, at in self._until.items() if at <= now]
        for tp in due:
            del self._until[tp]
        if due:
            resume(consumer, due)

    def forget(self, partitions: list[TopicPartition] | None = None, consumer: KafkaConsumer | None = None) -> None:
        """Forget the pauses of revoked partitions (all of them with None), and what `consumer` parked for them."""
        if partitions is None:
            self._until.clear()
            return
        paused = [tp for tp in partitions if self._until.pop(tp, None) is not None]
        if consumer is not None and paused:
            # Handed back to this member, a partition still holding parked records would never be fetched again.
            drop_parked(consumer, paused)
