"""One poll batch: handled, then committed through the commit protocol, or abandoned and rewound.

When the broker refuses an output for good (too large, invalid), the batch is run again record by record so that
only the record that made it is dead-lettered and the rest go through.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from quartet_contracts.topics import RETRY_SUFFIX

from quartet_shared.runner.commit import CommitProtocol
from quartet_shared.runner.dispatch import Dispatcher
from quartet_shared.runner.failures import Failures
from quartet_shared.runner.model import Aborted, BatchState, decode_all, refused

log = logging.getLogger(__name__)

Batch = dict[TopicPartition, list[ConsumerRecord]]


class Batches:
    """Processes and commits poll batches for one runner."""

    def __init__(
        self,
        group: str,
        protocol: CommitProtocol,
        dispatcher: Dispatcher,
        failures: Failures,
        stopping: threading.Event,
    ) -> None:
        self.group = group
        self._protocol = protocol
        self._dispatcher = dispatcher
        self._failures = failures
        self._stopping = stopping
        self._failed_in_a_row = 0

    def process(self, consumer: KafkaConsumer, batch: Batch) -> None:
        """Process and commit a batch; on failure, rewind it and wait before it is consumed again."""
        error, was_refused = self._try(consumer, batch)
        if error is None:
            self._failed_in_a_row = 0
            return
        records = [(tp, rec) for tp, recs in batch.items() for rec in recs]
        if was_refused and len(records) > 1:
            # Find the refused output's record by running each record on its own.
            log.warning("an output was refused; processing the batch record by record", extra={"group": self.group})
            for tp, rec in records:
                if self._stopping.is_set():
                    return
                if not self._alone(consumer, tp, rec):
                    break
            else:
                return
        elif was_refused:
            tp, rec = records[0]
            if self._dead_letter_alone(consumer, tp, rec, error):
                return
        self._failed_in_a_row += 1
        delay = self._failures.backoff(self._failed_in_a_row)
        log.error(
            "batch failed; it will be consumed again",
            extra={"group": self.group, "failures_in_a_row": self._failed_in_a_row, "retry_in_s": delay},
        )
        # A broker that is away would otherwise make this a busy loop of doomed batches.
        self._stopping.wait(delay)

    def _alone(self, consumer: KafkaConsumer, tp: TopicPartition, rec: ConsumerRecord) -> bool:
        """One record as its own batch (dead-lettered if the broker refuses its output); False on a failure."""
        error, was_refused = self._try(consumer, {tp: [rec]})
        if error is None:
            # The batch was rewound when it failed; move past what is now done so the next poll skips it.
            consumer.seek(tp, rec.offset + 1)
            return True
        return was_refused and self._dead_letter_alone(consumer, tp, rec, error)

    def _try(self, consumer: KafkaConsumer, batch: Batch) -> tuple[KafkaError | None, bool]:
        """Process and commit a batch; on a Kafka error, rewind it and return the error and whether the broker
        refused an output for good (as opposed to being unreachable)."""
        producer = self._protocol.producer
        state = BatchState()
        # A failure left over from sends outside any batch (none are expected) must not fail this one.
        producer.take_failures()
        try:
            self._protocol.begin()
            # Asked before the decoding so that Redis answers while this thread decodes.
            answer = self._protocol.known(batch)
            decoded = {tp: decode_all(records) for tp, records in batch.items()}
            known = answer()
            for tp, rows in decoded.items():
                self._dispatcher.process_partition(consumer, tp, rows, known, state)
            self._protocol.commit(consumer, state)
            self._dispatcher.run_after_commit(state)
        except Aborted:
            self._abandon(consumer, batch, state, keep_finished=True)
            return None, False
        except KafkaError as exc:
            _, first = producer.take_failures()
            log.warning("batch failed", extra={"group": self.group, "error": f"{type(exc).__name__}: {exc}"})
            # In a transaction the error raised may be the producer's generic "abortable" one; the refusal
            # itself is the first failure it recorded, and that is what a dead letter should name.
            refusal = exc if refused(exc) else first if isinstance(first, KafkaError) and refused(first) else None
            # After splitting a refused batch kafka-python's sequence numbers for the partition are off, and
            # the next transaction would fail on them: the next one starts from a fresh producer.
            self._abandon(consumer, batch, state, keep_finished=False, fresh_producer=refusal is not None)
            return (exc, False) if refusal is None else (refusal, True)
        return None, False

    def _dead_letter_alone(
        self, consumer: KafkaConsumer, tp: TopicPartition, rec: ConsumerRecord, error: BaseException
    ) -> bool:
        """Dead-letter one record whose output the broker refuses, and commit past it; False if that fails.

        Should the hook's own output be refused too, the dead letter goes alone rather than not at all.
        """
        return self._try_dead_letter(consumer, tp, rec, error, finalize=True) or self._try_dead_letter(
            consumer, tp, rec, error, finalize=False
        )

    def _try_dead_letter(
        self, consumer: KafkaConsumer, tp: TopicPartition, rec: ConsumerRecord, error: BaseException, finalize: bool
    ) -> bool:
        state = BatchState(offsets={tp: OffsetAndMetadata(rec.offset + 1, "", -1)})
        self._protocol.producer.take_failures()
        try:
            self._protocol.begin()
            base_topic = tp.topic.removesuffix(RETRY_SUFFIX)
            self._failures.dead_letter(rec, base_topic, error, attempts=1, finalize=finalize, state=state)
            self._protocol.commit(consumer, state)
        except KafkaError:
            log.exception("could not dead-letter a record whose output was refused", extra={"group": self.group})
            # A refusal leaves kafka-python's sequence numbers off, as in _try: start from a fresh producer.
            self._abandon(consumer, {tp: [rec]}, BatchState(), keep_finished=False, fresh_producer=True)
            return False
        consumer.seek(tp, rec.offset + 1)
        return True

    def _abandon(
        self,
        consumer: KafkaConsumer,
        batch: Batch,
        state: BatchState,
        *,
        keep_finished: bool,
        fresh_producer: bool = False,
    ) -> None:
        """Throw the batch's work away and rewind, so every record in it not known to be done is consumed again.

        `keep_finished` (a stop in mid-batch) commits the records that did finish, if their outputs are
        confirmed delivered; after a Kafka error nothing in the batch is trusted and all of it is redelivered.
        """
        committed_here = self._protocol.abandon(
            consumer,
            state,
            keep_finished=keep_finished and not self._stopping.is_set(),
            fresh_producer=fresh_producer,
        )
        if committed_here:
            self._dispatcher.run_after_commit(state)
        self._protocol.producer.take_failures()
        for tp, records in batch.items():
            committed = state.offsets.get(tp)
            restart = committed.offset if (committed is not None and committed_here) else records[0].offset
            with contextlib.suppress(Exception):
                consumer.seek(tp, restart)
