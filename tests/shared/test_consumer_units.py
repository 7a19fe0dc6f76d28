"""Pieces of the consumer runner driven on their own, with the in-memory broker behind their client port."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata
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
from quartet_shared.testing.broker import InMemoryBroker, InMemoryConsumer


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


SETTINGS = KernelSettings()
T0 = TopicPartition("t", 0)


def _member(broker: InMemoryBroker) -> InMemoryConsumer:
    """A member of group "g" that has joined and holds t-0."""
    broker.publish("t", Envelope(type="t", source="/x", data={"n": 0}))
    consumer = broker.consumer(SETTINGS, group_id="g", auto_offset_reset="earliest")
    consumer.subscribe(["t"])
    consumer.poll()
    return consumer


def test_a_member_dropped_from_its_group_aborts_instead_of_committing_offsets() -> None:
    """A zombie's reset generation is not fenced by the broker, so the runner refuses to send its offsets."""
    broker = InMemoryBroker()
    state = BatchState(offsets={T0: OffsetAndMetadata(1, "", -1)})
    protocol = Transactional(SETTINGS, "g", clients=broker)
    protocol.open(threading.Event())
    consumer = _member(broker)
    broker.expel(consumer)
    protocol.begin()
    with pytest.raises(CommitFailedError):
        protocol.commit(consumer, state)
    protocol.abandon(consumer, state, keep_finished=False, fresh_producer=False)
    assert broker.committed("g", T0) is None
    consumer.poll()
    protocol.begin()
    protocol.commit(consumer, state)
    assert broker.committed("g", T0) == 1


def _records(topic: str, count: int) -> list[ConsumerRecord]:
    broker = InMemoryBroker()
    for n in range(count):
        broker.publish(topic, Envelope(type="t", source="/x", data={"n": n}))
    return broker.records(topic)


def test_outputs_of_a_record_whose_send_failed_never_go_out_with_the_next_one() -> None:
    def handle(item: _Item, ctx: Context) -> None:
        ctx.emit("out", Envelope(type="t", source="/x", data={"n": item.n}))

    broker = InMemoryBroker()
    # The first send fails in the call itself, as kafka-python's does when its buffer stays full.
    broker.fail_sends(topic="out", error=KafkaTimeoutError("buffer full"), at_send=True)
    subs: dict[str, Subscription[Any]] = {"in": Subscription("in", handle, model=_Item, retry=False)}
    protocol = AtLeastOnce(SETTINGS, "g", clients=broker)
    protocol.open(threading.Event())
    dispatcher = Dispatcher(
        SETTINGS, "g", subs, protocol, Failures(SETTINGS, "g", protocol, subs.get), threading.Event()
    )
    route, tp = dispatcher.route("in"), TopicPartition("in", 0)
    (first, first_env, _), (second, second_env, _) = decode_all(_records("in", 2))
    assert first_env is not None and second_env is not None
    with pytest.raises(KafkaTimeoutError):
        dispatcher.handle(route, tp, first, first_env, BatchState())
    dispatcher.handle(route, tp, second, second_env, BatchState())
    assert [decode(r.key, r.value, r.headers).data["n"] for r in broker.records("out")] == [1]
