"""The runner's real dispatch, commit protocols, retries and dead letters under each fault, on the in-memory broker.

Each test counts per id: an item's effect applies once (at least once, the handler's own claim makes it so), and in
transactional mode each output is visible once to a read_committed reader while aborted ones stay invisible.
"""

from __future__ import annotations

import time

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from quartet_contracts.envelope import Envelope
from quartet_contracts.topics import DLQ_SUFFIX, RETRY_SUFFIX
from quartet_shared.consumer import (
    H_ATTEMPT,
    H_ATTEMPTS,
    H_ERROR_MESSAGE,
    H_ERROR_TYPE,
    H_NOT_BEFORE,
    Context,
    Mode,
    PermanentError,
    Subscription,
)
from quartet_shared.runner.loop import ConsumerRunner
from quartet_shared.runner.model import H_ORIGINAL_OFFSET, header
from quartet_shared.testing.broker import InMemoryBroker
from quartet_tools.harness.effects import Item

from tests.support.inmem import (
    GROUP,
    IN,
    OUT,
    Effects,
    committed_total,
    fast_settings,
    ids_on,
    publish_items,
    run_until,
    runner,
)

COUNT = 120
MODES = pytest.mark.parametrize("mode", list(Mode))


def _once_each(broker: InMemoryBroker, effects: Effects, ids: list[str], mode: Mode) -> None:
    """Nothing lost, nothing doubled: each effect once, each output seen (once, where transactions promise it)."""
    assert effects.applied == dict.fromkeys(ids, 1)
    outputs = ids_on(broker, OUT)
    assert set(outputs) == set(ids)
    if mode is Mode.TRANSACTIONAL:
        assert set(outputs.values()) == {1}


def _items_done(broker: InMemoryBroker, count: int = COUNT) -> bool:
    return committed_total(broker) == count


def _arm_once(effects: Effects, n: int, arm: object) -> None:
    """Call `arm()` the first time item `n` is handled (from inside the runner's batch)."""
    armed: list[bool] = []

    def on_item(item: Item, ctx: Context) -> None:
        if item.n == n and not armed:
            armed.append(True)
            arm()  # type: ignore[operator]

    effects.on_item = on_item


@MODES
def test_every_item_takes_effect_once_and_its_offset_is_committed(mode: Mode) -> None:
    broker, effects = InMemoryBroker(partitions=2), Effects()
    ids = publish_items(broker, COUNT)
    run_until(broker, runner(broker, effects, mode), lambda: _items_done(broker))
    _once_each(broker, effects, ids, mode)
    assert sum(effects.deliveries.values()) == COUNT


@MODES
def test_a_failed_commit_loses_and_doubles_nothing(mode: Mode) -> None:
    broker, effects = InMemoryBroker(partitions=2), Effects()
    ids = publish_items(broker, COUNT)
    broker.fail_commits()
    run_until(broker, runner(broker, effects, mode), lambda: _items_done(broker))
    _once_each(broker, effects, ids, mode)
    assert broker.faults.commit_failures == 0, "the fault did not fire"
    if mode is Mode.TRANSACTIONAL:
        # The aborted transaction's batch was handled again, its first outputs left aborted.
        assert sum(effects.deliveries.values()) > COUNT
        assert sum(ids_on(broker, OUT, committed_only=False).values()) > COUNT
    else:
        # The batch's work was already durable: only its offsets waited for the next commit.
        assert sum(effects.deliveries.values()) == COUNT


def test_an_at_least_once_runner_holds_its_offsets_back_for_the_interval_and_commits_them_when_it_stops() -> None:
    broker, effects = InMemoryBroker(partitions=2), Effects()
    ids = publish_items(broker, COUNT)
    runner_ = runner(broker, effects, Mode.AT_LEAST_ONCE, fast_settings(consumer_commit_interval_s=60))
    runner_.start()
    try:
        assert broker.wait_until(lambda: len(effects.applied) == COUNT and broker.drained(GROUP), 20)
        # Every item is done and its output flushed, but the interval has not passed: nothing committed yet.
        assert committed_total(broker) == 0
    finally:
        runner_.stop(10)
    assert runner_.error is None
    assert committed_total(broker) == COUNT
    _once_each(broker, effects, ids, Mode.AT_LEAST_ONCE)


def test_offsets_held_back_are_committed_in_the_rebalance_that_revokes_their_partitions() -> None:
    broker, effects = InMemoryBroker(partitions=2), Effects()
    ids = publish_items(broker, COUNT)
    runner_ = runner(broker, effects, Mode.AT_LEAST_ONCE, fast_settings(consumer_commit_interval_s=60))
    runner_.start()
    try:
        assert broker.wait_until(lambda: len(effects.applied) == COUNT and broker.drained(GROUP), 20)
        assert committed_total(broker) == 0
        broker.rebalance(GROUP)
        # The member commits what it held back in its revoke callback, then resumes from those offsets.
        assert broker.wait_until(lambda: committed_total(broker) == COUNT, 20)
    finally:
        runner_.stop(10)
    assert runner_.error is None
    # Nothing was consumed again after the rebalance: not even a delivery doubled.
    assert sum(effects.deliveries.values()) == COUNT
    _once_each(broker, effects, ids, Mode.AT_LEAST_ONCE)


@MODES
def test_polls_that_lose_their_connection_are_polled_again_and_lose_and_double_nothing(mode: Mode) -> None:
    broker, effects = InMemoryBroker(partitions=2), Effects()
    ids = publish_items(broker, COUNT)
    # A node killed while it answered the consumer's own coordinator lookup: kafka-python 3 raises from poll.
    _arm_once(effects, 7, lambda: broker.fail_polls(KafkaConnectionError("socket disconnected"), count=3))
    run_until(broker, runner(broker, effects, mode), lambda: _items_done(broker))
    _once_each(broker, effects, ids, mode)
    assert broker.faults.poll_failures == []


@MODES
def test_a_lost_send_mid_batch_fails_the_batch_and_it_is_redone_whole(mode: Mode) -> None:
    broker, effects = InMemoryBroker(partitions=2), Effects()
    ids = publish_items(broker, COUNT)
    _arm_once(effects, 7, lambda: broker.fail_sends(topic=OUT))
    run_until(broker, runner(broker, effects, mode), lambda: _items_done(broker))
    _once_each(broker, effects, ids, mode)
    assert sum(effects.deliveries.values()) > COUNT


def test_a_transaction_aborted_by_a_failure_leaves_none_of_its_outputs_visible() -> None:
    broker, effects = InMemoryBroker(partitions=1), Effects()
    ids = publish_items(broker, 20)
    _arm_once(effects, 7, lambda: broker.fail_sends(topic=OUT))
    run_until(broker, runner(broker, effects, Mode.TRANSACTIONAL), lambda: _items_done(broker, 20))
    written = ids_on(broker, OUT, committed_only=False)
    # Items 0-6 were output in the transaction that failed at 7, and again in the one that committed.
    assert [written[i] for i in ids[:7]] == [2] * 7
    assert ids_on(broker, OUT) == dict.fromkeys(ids, 1)


def test_a_fenced_producer_is_replaced_and_the_batch_commits_once_from_the_new_one() -> None:
    broker, effects = InMemoryBroker(partitions=2), Effects()
    ids = publish_items(broker, COUNT)
    # Another incarnation takes the transactional id over in the middle of a batch.
    _arm_once(effects, 7, broker.fence)
    run_until(broker, runner(broker, effects, Mode.TRANSACTIONAL), lambda: _items_done(broker))
    _once_each(broker, effects, ids, Mode.TRANSACTIONAL)
    assert sum(effects.deliveries.values()) > COUNT


@pytest.mark.parametrize("went_through", [False, True], ids=["not_committed", "committed_all_the_same"])
def test_a_stalled_commit_replaces_the_producer_and_each_output_is_committed_once(went_through: bool) -> None:
    broker, effects = InMemoryBroker(partitions=2), Effects()
    ids = publish_items(broker, COUNT)
    # The commit of the batch handling item 7 stalls, as on a SIGKILLed coordinator: either it never reached
    # the coordinator (the batch must be redone) or it did (redoing the batch would double its outputs).
    _arm_once(effects, 7, lambda: broker.stall_commits(went_through=went_through))
    run_until(broker, runner(broker, effects, Mode.TRANSACTIONAL), lambda: _items_done(broker))
    _once_each(broker, effects, ids, Mode.TRANSACTIONAL)
    # The stalled producer was fenced by its replacement.
    assert broker.epoch(f"{GROUP}-0") == 2
    redone = sum(effects.deliveries.values()) > COUNT
    assert redone is not went_through


@MODES
def test_a_record_delivered_twice_takes_effect_once(mode: Mode) -> None:
    broker, effects = InMemoryBroker(partitions=1), Effects()
    ids = publish_items(broker, 20)
    broker.deliver_twice(IN, 3)
    run_until(broker, runner(broker, effects, mode), lambda: _items_done(broker, 20))
    _once_each(broker, effects, ids, mode)
    if mode is Mode.TRANSACTIONAL:
        # The committed changelog knows the id: the handler never sees the second delivery.
        assert effects.deliveries[ids[3]] == 1
    else:
        # At least once without Redis the handler sees it again; its own claim keeps the effect single.
        assert effects.deliveries[ids[3]] == 2


@MODES
def test_a_rebalance_in_the_middle_of_a_batch_loses_and_doubles_nothing(mode: Mode) -> None:
    broker, effects = InMemoryBroker(partitions=2), Effects()
    ids = publish_items(broker, COUNT)
    _arm_once(effects, 7, lambda: broker.rebalance(GROUP))
    run_until(broker, runner(broker, effects, mode), lambda: _items_done(broker))
    _once_each(broker, effects, ids, mode)
    if mode is Mode.TRANSACTIONAL:
        # The batch's transaction was refused for the old generation and the batch was consumed again.
        assert sum(effects.deliveries.values()) > COUNT
    else:
        # Its work was durable; its offsets, held back, were committed in the revoke callback.
        assert sum(effects.deliveries.values()) == COUNT


@MODES
def test_bad_records_go_to_the_dead_letter_topic_with_their_reason_and_the_rest_go_through(mode: Mode) -> None:
    broker, effects = InMemoryBroker(partitions=1), Effects()
    ids = publish_items(broker, 3)
    broker.producer(fast_settings()).send(IN, b"not an event", headers=[("ce_id", b"junk")])
    broker.publish(IN, Envelope(type="quartet.test.Item.v1", source="/test", data={"n": "not a number"}))
    ids += publish_items(broker, 3, first=3)

    def on_item(item: Item, ctx: Context) -> None:
        if item.n == 4:
            raise PermanentError("item 4 can never be handled")

    effects.on_item = on_item
    run_until(broker, runner(broker, effects, mode), lambda: _items_done(broker, 8))
    dead = sorted(broker.records(IN + DLQ_SUFFIX), key=lambda r: int(header(r, H_ORIGINAL_OFFSET) or 0))
    assert [(header(r, H_ORIGINAL_OFFSET), header(r, H_ERROR_TYPE)) for r in dead] == [
        ("3", "EnvelopeError"),
        ("4", "SchemaError"),
        ("6", "PermanentError"),
    ]
    assert header(dead[2], H_ERROR_MESSAGE) == "item 4 can never be handled"
    assert dead[0].value == b"not an event"
    handled = [i for i in ids if i != ids[4]]
    assert effects.applied == dict.fromkeys(handled, 1)
    assert set(ids_on(broker, OUT)) == set(handled)


@MODES
def test_a_failing_item_goes_through_the_retry_topic_paused_until_due_and_then_succeeds(mode: Mode) -> None:
    broker, effects = InMemoryBroker(partitions=1), Effects()
    ids = publish_items(broker, 10)
    succeeded_at: list[float] = []

    def on_item(item: Item, ctx: Context) -> None:
        if item.n == 3 and ctx.attempt <= 3:
            raise RuntimeError(f"attempt {ctx.attempt} fails")
        if item.n == 3:
            succeeded_at.append(time.time())

    effects.on_item = on_item
    settings = fast_settings(retry_backoff_base_s=0.1, retry_backoff_max_s=1.0)
    retry_tp = TopicPartition(IN + RETRY_SUFFIX, 0)
    run_until(
        broker,
        runner(broker, effects, mode, settings),
        lambda: _items_done(broker, 10) and broker.committed(GROUP, retry_tp) == 1,
    )
    (retry,) = broker.records(IN + RETRY_SUFFIX)
    assert (header(retry, H_ATTEMPT), header(retry, H_ERROR_MESSAGE)) == ("3", "attempt 3 fails")
    # Three inline attempts, then one from the retry topic, which waited (paused) until the record was due.
    assert effects.deliveries[ids[3]] == 4
    assert succeeded_at[0] * 1000 >= int(header(retry, H_NOT_BEFORE) or 0)
    assert broker.records(IN + DLQ_SUFFIX) == []
    _once_each(broker, effects, ids, mode)


@MODES
def test_an_item_that_keeps_failing_is_dead_lettered_after_its_last_attempt(mode: Mode) -> None:
    broker, effects = InMemoryBroker(partitions=1), Effects()
    ids = publish_items(broker, 5)

    def on_item(item: Item, ctx: Context) -> None:
        if item.n == 2:
            raise RuntimeError("always")

    effects.on_item = on_item
    settings = fast_settings(max_attempts=4)
    run_until(broker, runner(broker, effects, mode, settings), lambda: bool(broker.records(IN + DLQ_SUFFIX)))
    (dead,) = broker.records(IN + DLQ_SUFFIX)
    assert (header(dead, H_ATTEMPTS), header(dead, H_ERROR_TYPE), header(dead, "ce_id")) == (
        "4",
        "RuntimeError",
        ids[2],
    )
    assert effects.deliveries[ids[2]] == 4
    assert ids[2] not in effects.applied


@MODES
def test_an_output_the_broker_refuses_dead_letters_only_its_own_input(mode: Mode) -> None:
    broker, effects = InMemoryBroker(partitions=1), Effects()
    ids = publish_items(broker, 10)

    def on_item(item: Item, ctx: Context) -> None:
        if item.n == 6:
            broker.fail_sends(topic=OUT, error=MessageSizeTooLargeError("in-memory broker: too large"))

    effects.on_item = on_item
    run_until(broker, runner(broker, effects, mode), lambda: _items_done(broker, 10))
    (dead,) = broker.records(IN + DLQ_SUFFIX)
    assert header(dead, "ce_id") == ids[6]
    assert "MessageSizeTooLargeError" in (header(dead, H_ERROR_MESSAGE) or "") + (header(dead, H_ERROR_TYPE) or "")
    assert set(ids_on(broker, OUT)) == set(ids) - {ids[6]}


@MODES
def test_a_second_member_joining_mid_stream_takes_partitions_over_and_nothing_is_lost_or_doubled(mode: Mode) -> None:
    broker, effects = InMemoryBroker(partitions=4), Effects()
    ids = publish_items(broker, COUNT)
    # Each instance has its own transactional id, as each replica of a service does.
    first = runner(broker, effects, mode, fast_settings(instance_id="a", topic_partitions=4))
    second = runner(broker, effects, mode, fast_settings(instance_id="b", topic_partitions=4))

    def join() -> None:
        """Start the second member and hold the first's batch until the second has its partitions."""
        second.start()
        assert broker.wait_until(second.ready, 10), "the second member never joined"

    _arm_once(effects, 30, join)
    try:
        run_until(broker, first, lambda: _items_done(broker) and second.ready())
    finally:
        second.stop(10)
    assert second.error is None
    _once_each(broker, effects, ids, mode)
    # Both members handled items: the partitions were shared out when the second joined.
    assert len(effects.threads) == 2


@pytest.mark.parametrize("static", [False, True])
@MODES
def test_only_a_transactional_runner_asked_to_is_a_static_member_named_by_its_transactional_id(
    mode: Mode, static: bool
) -> None:
    broker, effects = InMemoryBroker(partitions=2), Effects()
    ids = publish_items(broker, 20)
    settings = fast_settings(consumer_static_membership=static, instance_id="w7")
    built: list[dict[str, object]] = []

    def consumer(settings_: object, **config: object) -> object:
        built.append(config)
        return broker.consumer(settings, **config)

    run = ConsumerRunner(
        settings,
        GROUP,
        [Subscription(IN, effects.handle, Item)],
        mode=mode,
        clients=broker,
        consumer_factory=consumer,
        poll_timeout_ms=20,
    )
    run_until(broker, run, lambda: _items_done(broker, 20))
    _once_each(broker, effects, ids, mode)
    named = [config.get("group_instance_id") for config in built]
    assert named == [f"{GROUP}-w7" if static and mode is Mode.TRANSACTIONAL else None]
    assert built[0]["heartbeat_interval_ms"] == 2000 and built[0]["session_timeout_ms"] == 6_000
