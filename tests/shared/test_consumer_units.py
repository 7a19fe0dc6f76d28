"""Pieces of the consumer runner that need no broker."""

from __future__ import annotations

import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaTimeoutError
from kafka.structs import ConsumerGroupMetadata, OffsetAndMetadata
from pydantic import BaseModel
from quartet_contracts.envelope import Envelope, decode
from quartet_shared.consumer import (
    KERNEL_HEADERS,
    ConsumerRunner,
    Context,
    Mode,
    Subscription,
    _BatchState,
    _decode_all,
    backoff_delay,
    original_headers,
)
from quartet_shared.settings import KernelSettings


class _Item(BaseModel):
    n: int


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(a, 0.2, 1.0) for a in range(1, 6)] == [0.2, 0.4, 0.8, 1.0, 1.0]


def test_replays_strip_every_kernel_header_and_keep_the_originals() -> None:
    headers = [
        ("ce_id", b"1"),
        ("traceparent", b"t"),
        *((h, b"x") for h in sorted(KERNEL_HEADERS)),
        ("dlq_via_topic", b"t.retry"),
    ]
    assert original_headers(headers) == [("ce_id", b"1"), ("traceparent", b"t")]


class _RawProducer:
    def __init__(self) -> None:
        self.offsets_sent: list[object] = []
        self.committed = 0

    def send_offsets_to_transaction(self, offsets: object, metadata: object) -> None:
        self.offsets_sent.append((offsets, metadata))

    def commit_transaction(self) -> None:
        self.committed += 1


class _Producer:
    def __init__(self) -> None:
        self.raw = _RawProducer()

    def send_raw(self, *args: object, **kwargs: object) -> None:
        """Changelog records are not what this test is about."""

    def flush(self) -> None:
        """Every send is taken at once here."""


class _Consumer:
    def __init__(self, generation: int, member: str) -> None:
        self.metadata = ConsumerGroupMetadata("g", generation, member, None, None)

    def group_metadata(self) -> ConsumerGroupMetadata:
        return self.metadata


def _runner_with(consumer: _Consumer) -> tuple[ConsumerRunner, _Producer]:
    runner = ConsumerRunner(KernelSettings(), "g", [], mode=Mode.TRANSACTIONAL)
    producer = _Producer()
    runner._producer = producer  # type: ignore[assignment]
    runner._consumer = consumer  # type: ignore[assignment]
    return runner, producer


def test_a_member_dropped_from_its_group_aborts_instead_of_committing_offsets() -> None:
    """A zombie's reset generation is not fenced by the broker, so the runner refuses to send its offsets."""
    state = _BatchState(offsets={TopicPartition("t", 0): OffsetAndMetadata(4, "", -1)})
    runner, producer = _runner_with(_Consumer(-1, ""))
    with pytest.raises(CommitFailedError):
        runner._commit_transaction(state)
    assert (producer.raw.offsets_sent, producer.raw.committed) == ([], 0)
    runner, producer = _runner_with(_Consumer(7, "member-1"))
    runner._commit_transaction(state)
    assert len(producer.raw.offsets_sent) == 1
    assert producer.raw.committed == 1


class _FlakyProducer:
    """Refuses its first send (as a full buffer would), takes the rest."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []
        self.refused = 0

    def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]],
        partition: int | None = None,
    ) -> None:
        # The runner sends its outputs already encoded (and measured against the event bound) as they were emitted.
        if not self.refused:
            self.refused += 1
            raise KafkaTimeoutError("buffer full")
        self.sent.append((topic, decode(key, value, headers).data["n"]))


def test_outputs_of_a_record_whose_send_failed_never_go_out_with_the_next_one() -> None:
    def handle(item: _Item, ctx: Context) -> None:
        ctx.emit("out", Envelope(type="t", source="/x", data={"n": item.n}))

    runner = ConsumerRunner(KernelSettings(), "g", [Subscription("in", handle, model=_Item, retry=False)])
    producer = _FlakyProducer()
    runner._producer = producer  # type: ignore[assignment]
    records = []
    for n in range(2):
        key, value, headers = Envelope(type="t", source="/x", data={"n": n}).to_kafka()
        records.append(ConsumerRecord("in", 0, None, n, 0, 0, key, value, headers, None, 0, len(value), 0))
    first, second = _decode_all(records)
    route, tp = runner._route("in"), TopicPartition("in", 0)
    with pytest.raises(KafkaTimeoutError):
        runner._handle(route, tp, first[0], first[1], _BatchState())  # type: ignore[arg-type]
    runner._handle(route, tp, second[0], second[1], _BatchState())  # type: ignore[arg-type]
    assert producer.sent == [("out", 1)]
