"""Pieces of the consumer runner that need no broker, driven through its constructor-injected seams."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaTimeoutError
from kafka.structs import ConsumerGroupMetadata, OffsetAndMetadata
from pydantic import BaseModel
from quartet_contracts.envelope import Envelope, decode
from quartet_shared.consumer import (
    KERNEL_HEADERS,
    AtLeastOnce,
    ConsumerRunner,
    Context,
    Mode,
    Subscription,
    Transactional,
    backoff_delay,
    commit_protocol,
    original_headers,
)
from quartet_shared.runner.dispatch import Dispatcher
from quartet_shared.runner.failures import Failures
from quartet_shared.runner.model import BatchState, decode_all
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


def test_the_mode_picks_the_commit_protocol_once() -> None:
    settings = KernelSettings()
    assert isinstance(commit_protocol(Mode.AT_LEAST_ONCE, settings, "g"), AtLeastOnce)
    assert isinstance(commit_protocol(Mode.TRANSACTIONAL, settings, "g"), Transactional)
    assert isinstance(ConsumerRunner(settings, "g", [], mode=Mode.TRANSACTIONAL).commit, Transactional)


class _RawProducer:
    def __init__(self) -> None:
        self.offsets_sent: list[object] = []
        self.committed = 0
        self.initialised = 0

    def init_transactions(self) -> None:
        self.initialised += 1

    def send_offsets_to_transaction(self, offsets: object, metadata: object) -> None:
        self.offsets_sent.append((offsets, metadata))

    def commit_transaction(self) -> None:
        self.committed += 1


class _Producer:
    """Takes every send at once; `refuse_first` makes its first send fail as a full buffer would."""

    def __init__(self, *, refuse_first: bool = False) -> None:
        self.raw = _RawProducer()
        self.sent: list[tuple[str, int]] = []
        self._refuse = refuse_first

    def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]],
        partition: int | None = None,
    ) -> None:
        if self._refuse:
            self._refuse = False
            raise KafkaTimeoutError("buffer full")
        if headers:
            self.sent.append((topic, decode(key, value, headers).data["n"]))

    def flush(self) -> None:
        """Every send is taken at once here."""


def _factory(producer: _Producer) -> Any:
    def make(settings: KernelSettings, **overrides: Any) -> _Producer:
        return producer

    return make


class _Consumer:
    def __init__(self, generation: int, member: str) -> None:
        self.metadata = ConsumerGroupMetadata("g", generation, member, None, None)

    def group_metadata(self) -> ConsumerGroupMetadata:
        return self.metadata


def _transactional(producer: _Producer) -> Transactional:
    protocol = Transactional(KernelSettings(), "g", _factory(producer))
    protocol.open(threading.Event())
    return protocol


def test_a_member_dropped_from_its_group_aborts_instead_of_committing_offsets() -> None:
    """A zombie's reset generation is not fenced by the broker, so the runner refuses to send its offsets."""
    state = BatchState(offsets={TopicPartition("t", 0): OffsetAndMetadata(4, "", -1)})
    producer = _Producer()
    protocol = _transactional(producer)
    assert producer.raw.initialised == 1
    with pytest.raises(CommitFailedError):
        protocol.commit(_Consumer(-1, ""), state)  # type: ignore[arg-type]
    assert (producer.raw.offsets_sent, producer.raw.committed) == ([], 0)
    protocol.commit(_Consumer(7, "member-1"), state)  # type: ignore[arg-type]
    assert len(producer.raw.offsets_sent) == 1
    assert producer.raw.committed == 1


def _records(topic: str, count: int) -> list[ConsumerRecord]:
    records = []
    for n in range(count):
        key, value, headers = Envelope(type="t", source="/x", data={"n": n}).to_kafka()
        records.append(ConsumerRecord(topic, 0, None, n, 0, 0, key, value, headers, None, 0, len(value), 0))
    return records


def test_outputs_of_a_record_whose_send_failed_never_go_out_with_the_next_one() -> None:
    def handle(item: _Item, ctx: Context) -> None:
        ctx.emit("out", Envelope(type="t", source="/x", data={"n": item.n}))

    settings, producer = KernelSettings(), _Producer(refuse_first=True)
    subs: dict[str, Subscription[Any]] = {"in": Subscription("in", handle, model=_Item, retry=False)}
    protocol = AtLeastOnce(settings, "g", _factory(producer))
    protocol.open(threading.Event())
    dispatcher = Dispatcher(
        settings, "g", subs, protocol, Failures(settings, "g", protocol, subs.get), threading.Event()
    )
    route, tp = dispatcher.route("in"), TopicPartition("in", 0)
    (first, first_env, _), (second, second_env, _) = decode_all(_records("in", 2))
    assert first_env is not None and second_env is not None
    with pytest.raises(KafkaTimeoutError):
        dispatcher.handle(route, tp, first, first_env, BatchState())
    dispatcher.handle(route, tp, second, second_env, BatchState())
    assert producer.sent == [("out", 1)]
