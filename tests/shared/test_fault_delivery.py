"""Fault tests: the contract's delivery guarantees, proved against the real broker, Redis and PostgreSQL.

Each test counts effects (PostgreSQL rows, or committed output records) per message id, so it fails if a
message is lost or applied twice.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.future import Future
from kafka.structs import MemberState
from quartet_contracts.envelope import Envelope
from quartet_contracts.topics import TopicSpec
from quartet_shared.cache import DedupCache, ResilientRedis
from quartet_shared.clients import kafka_consumer
from quartet_shared.consumer import ConsumerRunner, Context, Mode, PermanentError, Subscription
from quartet_shared.dlq import list_dead_letters, replay_dead_letters
from quartet_shared.metrics import CONSUMER_STALLS
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics
from quartet_tools.harness.effects import Item, effect_counts, effect_pids, publish_items, record_effect, setup_db
from quartet_tools.harness.processes import Workers
from sqlalchemy import Engine

from tests.support.effects import committed_to_end, records_to_end, wait_until
from tests.support.jobs import committed_events
from tests.support.servers import Servers

pytestmark = [pytest.mark.integration, pytest.mark.fault]

# What the effect counts wait for before they are taken: the group committed up to the end of its input, so no
# record can be delivered again and double an effect after the count (a fixed sleep only made that likely).
NOTHING_LEFT = "the group to commit every input (nothing left to redeliver)"


@pytest.fixture
def engine(settings: KernelSettings) -> Iterator[Engine]:
    eng = setup_db(settings.database_url or "")
    yield eng
    eng.dispose()


def _runner_thread(runner: ConsumerRunner) -> ConsumerRunner:
    runner.start()
    assert runner.started.wait(60), "runner did not start"
    return runner


def test_sigkill_mid_stream_then_restart_applies_each_message_once(
    settings: KernelSettings, engine: Engine, workers: Workers, unique: str
) -> None:
    topic, group, run = f"items.{unique}", f"g.{unique}", unique
    ensure_topics(settings, [TopicSpec(topic, "")])
    ids = publish_items(settings, topic, 1500)
    first = workers.start("--topic", topic, "--group", group, "--run", run, "--sleep-ms", "2")
    wait_until(lambda: sum(effect_counts(engine, run).values()) >= 300, 120, "300 effects before the kill")
    workers.kill9(first)
    done_at_kill = sum(effect_counts(engine, run).values())
    assert done_at_kill < len(ids), "the kill must land mid-stream"
    workers.start("--topic", topic, "--group", group, "--run", run)
    wait_until(lambda: len(effect_counts(engine, run)) == len(ids), 180, "every message's effect")
    wait_until(lambda: committed_to_end(settings, group, [topic]), 60, NOTHING_LEFT)
    counts = effect_counts(engine, run)
    assert set(counts) == set(ids)
    assert max(counts.values()) == 1, f"doubled: {[k for k, v in counts.items() if v > 1][:5]}"


def test_two_consumers_one_killed_its_partitions_move_and_nothing_is_lost(
    settings: KernelSettings, engine: Engine, workers: Workers, unique: str
) -> None:
    topic, group, run = f"items.{unique}", f"g.{unique}", unique
    ensure_topics(settings, [TopicSpec(topic, "", partitions=6)])
    ids = publish_items(settings, topic, 3000)
    a = workers.start("--topic", topic, "--group", group, "--run", run, "--sleep-ms", "3", instance="a")
    workers.start("--topic", topic, "--group", group, "--run", run, "--sleep-ms", "3", instance="b")
    wait_until(lambda: len(effect_pids(engine, run)) == 2, 120, "both consumers to write effects")
    wait_until(lambda: sum(effect_counts(engine, run).values()) >= 600, 120, "600 effects")
    workers.kill9(a)
    wait_until(lambda: len(effect_counts(engine, run)) == len(ids), 240, "every message's effect")
    # The killed consumer's uncommitted records are delivered to the survivor again once its session expires.
    wait_until(lambda: committed_to_end(settings, group, [topic]), 60, NOTHING_LEFT)
    counts = effect_counts(engine, run)
    assert set(counts) == set(ids)
    assert max(counts.values()) == 1
    survivor = [pid for pid in effect_pids(engine, run) if pid != a.pid]
    assert len(survivor) == 1


def test_duplicate_event_ids_and_a_replayed_dead_letter_take_effect_once(
    settings: KernelSettings, engine: Engine, unique: str
) -> None:
    topic, group, run = f"items.{unique}", f"g.{unique}", unique
    ensure_topics(settings, [TopicSpec(topic, "")])
    fixed = threading.Event()

    def handle(item: Item, ctx: Context) -> None:
        if item.broken and not fixed.is_set():
            raise PermanentError("item is broken until the fix ships")
        record_effect(engine, run, group, ctx, item.n)

    runner = _runner_thread(ConsumerRunner(settings, group, [Subscription(topic, handle, Item)]))
    try:
        producer = Producer(settings)
        dup = Envelope.of(Item(n=1), source="/tests", key="same")
        producer.send_confirmed(topic, dup)
        producer.send_confirmed(topic, dup)
        broken = Envelope.of(Item(n=2, broken=True), source="/tests", key="same")
        producer.send_confirmed(topic, broken)
        after = Envelope.of(Item(n=3), source="/tests", key="same")
        producer.send_confirmed(topic, after)
        producer.close()
        wait_until(lambda: len(effect_counts(engine, run)) == 2, 60, "the duplicate and the later item")
        wait_until(lambda: len(list_dead_letters(settings, topic)) == 1, 60, "the broken item's dead letter")
        letter = list_dead_letters(settings, topic)[0]
        assert letter.ce_id == broken.id
        assert letter.reason["dlq_error_type"] == "PermanentError"
        fixed.set()
        assert replay_dead_letters(settings, topic) == 1
        wait_until(lambda: len(effect_counts(engine, run)) == 3, 60, "the replayed item's effect")
        assert replay_dead_letters(settings, topic) == 0
        wait_until(lambda: committed_to_end(settings, group, [topic]), 60, NOTHING_LEFT)
        assert effect_counts(engine, run) == {dup.id: 1, broken.id: 1, after.id: 1}
    finally:
        runner.stop()


def test_garbage_and_wrong_schema_go_to_the_dlq_and_the_records_behind_them_are_processed(
    settings: KernelSettings, engine: Engine, unique: str
) -> None:
    topic, group, run = f"items.{unique}", f"g.{unique}", unique
    ensure_topics(settings, [TopicSpec(topic, "")])
    raw = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    good = [Envelope.of(Item(n=i), source="/tests", key="k") for i in range(3)]
    wrong = Envelope(type="quartet.test.Item.v1", source="/tests", data={"n": "not a number"}, key="k")
    # Valid CloudEvents headers around data that is not JSON, and around JSON that is not an object.
    not_json, not_object = (Envelope.of(Item(n=9), source="/tests", key="k").to_kafka() for _ in range(2))
    for rec in (
        good[0].to_kafka(),
        (b"k", b"\x00\xffgarbage", []),
        good[1].to_kafka(),
        wrong.to_kafka(),
        (b"k", b'{"n": 1', not_json[2]),
        (b"k", b"[1]", not_object[2]),
        good[2].to_kafka(),
    ):
        raw.send(topic, key=rec[0], value=rec[1], headers=rec[2])
    raw.flush()
    raw.close()
    runner = _runner_thread(
        ConsumerRunner(
            settings, group, [Subscription(topic, lambda i, c: record_effect(engine, run, group, c, i.n), Item)]
        )
    )
    try:
        wait_until(lambda: len(effect_counts(engine, run)) == 3, 60, "the three good records")
        wait_until(lambda: len(list_dead_letters(settings, topic)) == 4, 60, "four dead letters")
    finally:
        runner.stop()
    letters = sorted(list_dead_letters(settings, topic), key=lambda d: int(d.reason["dlq_original_offset"]))
    assert [d.reason["dlq_error_type"] for d in letters] == [
        "EnvelopeError",
        "SchemaError",
        "EnvelopeError",
        "EnvelopeError",
    ]
    assert [d.reason["dlq_original_offset"] for d in letters] == ["1", "3", "4", "5"]
    assert "missing CloudEvents headers" in letters[0].reason["dlq_error_message"]
    assert "n:" in letters[1].reason["dlq_error_message"]
    assert "not JSON" in letters[2].reason["dlq_error_message"]
    assert "must be a JSON object, got list" in letters[3].reason["dlq_error_message"]
    for d in letters:
        assert d.reason["dlq_original_topic"] == topic
        assert d.reason["dlq_attempts"] == "1"
        assert d.reason["dlq_first_failure_time"] and d.reason["dlq_last_failure_time"]
    assert effect_counts(engine, run) == {e.id: 1 for e in good}


@pytest.mark.parametrize("inline_attempts", [3, 1], ids=["inline-backoff", "via-retry-topic"])
def test_a_handler_failing_twice_then_succeeding_takes_effect_once_after_backoff(
    settings: KernelSettings, engine: Engine, unique: str, inline_attempts: int
) -> None:
    topic, group, run = f"items.{unique}", f"g.{unique}", unique
    cfg = settings.model_copy(update={"max_inline_attempts": inline_attempts, "retry_backoff_base_s": 0.3})
    ensure_topics(cfg, [TopicSpec(topic, ""), TopicSpec(topic + ".retry", "")])
    attempts: list[float] = []

    def flaky(item: Item, ctx: Context) -> None:
        attempts.append(time.monotonic())
        if len(attempts) <= 2:
            raise ConnectionError("transient")
        record_effect(engine, run, group, ctx, item.n)

    runner = _runner_thread(ConsumerRunner(cfg, group, [Subscription(topic, flaky, Item)]))
    try:
        env = Envelope.of(Item(n=7), source="/tests", key="k")
        Producer(cfg).send_confirmed(topic, env)
        wait_until(lambda: len(effect_counts(engine, run)) == 1, 60, "the effect after two failures")
        time.sleep(1.5)
    finally:
        runner.stop()
    assert len(attempts) == 3
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.3 * 0.9, gaps
    assert gaps[1] >= 0.6 * 0.9, gaps
    assert gaps[1] > gaps[0]
    assert effect_counts(engine, run) == {env.id: 1}
    assert list_dead_letters(cfg, topic) == []


class _StallsOnce:
    """A consumer factory whose first consumer, once `arm` is set, makes the call kafka-python 3.0 was seen to
    stall in: a wait on its I/O loop for a future nothing completes (here with no timeout at all)."""

    def __init__(self) -> None:
        self.arm = threading.Event()
        self.stalling = threading.Event()
        self.consumers = 0

    def __call__(self, settings: KernelSettings, **options: Any) -> KafkaConsumer:
        consumer = kafka_consumer(settings, **options)
        self.consumers += 1
        if self.consumers == 1:
            poll, arm, stalling = consumer.poll, self.arm, self.stalling

            def stalling_poll(*args: Any, **kwargs: Any) -> Any:
                if arm.is_set():
                    stalling.set()
                    consumer._net.run(consumer._manager.wait_for, Future(), None)
                return poll(*args, **kwargs)

            consumer.poll = stalling_poll
        return consumer


def _effects_across(
    make_runner: Callable[[Subscription[Item]], ConsumerRunner],
    fault: Callable[[ConsumerRunner], None],
    settings: KernelSettings,
    engine: Engine,
    unique: str,
) -> ConsumerRunner:
    """Items before and after `fault(runner)`; asserts each one's effect exactly once and returns the runner."""
    topic, group, run = f"items.{unique}", f"g.{unique}", unique
    ensure_topics(settings, [TopicSpec(topic, "")])
    first = publish_items(settings, topic, 100)

    def handle(item: Item, ctx: Context) -> None:
        record_effect(engine, run, group, ctx, item.n)

    runner = _runner_thread(make_runner(Subscription(topic, handle, Item)))
    try:
        wait_until(lambda: len(effect_counts(engine, run)) == len(first), 120, "the first items' effects")
        fault(runner)
        later = publish_items(settings, topic, 100, start=100)
        # Longer than the session timeout: a member left stuck is expired and never fetches again.
        wait_until(lambda: len(effect_counts(engine, run)) == len(first) + len(later), 90, "the later items' effects")
        wait_until(lambda: committed_to_end(settings, group, [topic]), 60, NOTHING_LEFT)
    finally:
        runner.stop()
    counts = effect_counts(engine, run)
    assert set(counts) == set(first + later)
    assert max(counts.values()) == 1
    assert runner.error is None
    return runner


@pytest.mark.parametrize("mode", [Mode.AT_LEAST_ONCE, Mode.TRANSACTIONAL])
def test_a_kafka_call_that_never_returns_rebuilds_the_consumer_and_each_message_takes_effect_once(
    settings: KernelSettings, engine: Engine, unique: str, mode: Mode
) -> None:
    cfg, group = settings.model_copy(update={"consumer_stall_timeout_s": 3.0}), f"g.{unique}"
    before = CONSUMER_STALLS.labels(group, "call")._value.get()

    stalls = _StallsOnce()

    def make(sub: Subscription[Item]) -> ConsumerRunner:
        return ConsumerRunner(cfg, group, [sub], mode=mode, redis=ResilientRedis(cfg), consumer_factory=stalls)

    def stall(runner: ConsumerRunner) -> None:
        stalls.arm.set()
        # A poll already under way could otherwise take the later items before the stall begins.
        assert stalls.stalling.wait(30), "the armed poll never started"

    runner = _effects_across(make, stall, cfg, engine, unique)
    assert runner.stalls == 1 and stalls.consumers == 2
    assert CONSUMER_STALLS.labels(group, "call")._value.get() == before + 1


def _drop_a_join(consumer: KafkaConsumer) -> None:
    """Leave the consumer as kafka-python 3.0.12 was seen to: a rebalance begun (partitions revoked, heartbeats
    off), its JoinGroup and SyncGroup answered, and the answer never applied, with no rejoin pending."""
    coordinator = consumer._coordinator

    async def begin_and_drop() -> None:
        generation = coordinator._generation
        await coordinator._on_join_prepare_async(generation.generation_id, generation.member_id)
        coordinator.rejoining = True
        coordinator._disable_heartbeat()
        await coordinator._do_join_and_sync_async()

    consumer._net.run(begin_and_drop)
    assert coordinator.state == MemberState.REBALANCING and not coordinator.need_rejoin()


@pytest.mark.parametrize("mode", [Mode.AT_LEAST_ONCE, Mode.TRANSACTIONAL])
def test_a_join_the_client_dropped_half_way_is_restarted_and_each_message_takes_effect_once(
    settings: KernelSettings, engine: Engine, unique: str, mode: Mode
) -> None:
    group = f"g.{unique}"
    before = CONSUMER_STALLS.labels(group, "join")._value.get()

    def make(sub: Subscription[Item]) -> ConsumerRunner:
        return ConsumerRunner(settings, group, [sub], mode=mode, redis=ResilientRedis(settings))

    def drop(runner: ConsumerRunner) -> None:
        assert runner.consumer is not None
        _drop_a_join(runner.consumer)

    runner = _effects_across(make, drop, settings, engine, unique)
    assert runner.join_restarts == 1
    assert CONSUMER_STALLS.labels(group, "join")._value.get() == before + 1


@pytest.mark.parametrize("mode", [Mode.AT_LEAST_ONCE, Mode.TRANSACTIONAL])
def test_an_output_the_broker_refuses_dead_letters_its_input_and_the_rest_go_through(
    settings: KernelSettings, unique: str, mode: Mode
) -> None:
    """The broker refuses one record's output for good (too large for its topic): that input goes to the DLQ
    with the reason, the records around it get their outputs, and after the fix a replay gives its output once."""
    topic, out, group = f"items.{unique}", f"big.{unique}", f"g.{unique}"
    ensure_topics(settings, [TopicSpec(topic, "", partitions=1)])
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    admin.create_topics([NewTopic(out, 1, 1, topic_configs={"max.message.bytes": "1000"})])

    def handler(item: Item, ctx: Context) -> None:
        pad = "x" * (4000 if item.n == 1 else 10)
        ctx.emit(out, Envelope(type="quartet.test.Big.v1", source="/tests", data={"n": item.n, "pad": pad}))

    def outputs() -> list[int]:
        return sorted(e.data["n"] for e in committed_events(settings, out))

    runner = _runner_thread(ConsumerRunner(settings, group, [Subscription(topic, handler, Item)], mode=mode))
    try:
        publish_items(settings, topic, 3, keys=1)
        wait_until(lambda: len(list_dead_letters(settings, topic)) == 1, 60, "the refused record dead-lettered")
        wait_until(lambda: set(outputs()) == {0, 2}, 60, "the outputs of the records around it")
        probe = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group)
        try:
            wait_until(lambda: probe.committed(TopicPartition(topic, 0)) == 3, 30, "all three inputs committed")
        finally:
            probe.close()
        (letter,) = list_dead_letters(settings, topic)
        assert letter.reason["dlq_error_type"] in {"ProduceFailed", "MessageSizeTooLargeError"}
        assert "MessageSizeTooLarge" in letter.reason["dlq_error_message"]
        assert letter.reason["dlq_original_offset"] == "1"
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, out, configs={"max.message.bytes": "1048576"})])
        assert replay_dead_letters(settings, topic) == 1
        wait_until(lambda: 1 in outputs(), 60, "the replayed record's output")
    finally:
        runner.stop()
        admin.close()
    if mode is Mode.TRANSACTIONAL:
        assert outputs() == [0, 1, 2]
    else:
        assert set(outputs()) == {0, 1, 2}


@pytest.mark.parametrize("mode", [Mode.AT_LEAST_ONCE, Mode.TRANSACTIONAL])
def test_an_output_over_the_kernel_bound_dead_letters_its_input_named_and_the_rest_go_through(
    settings: KernelSettings, unique: str, mode: Mode
) -> None:
    """An emitted event over `max_event_bytes` never reaches the broker: its input is dead-lettered at once with
    EventTooLarge and the sizes, and the records around it get their outputs."""
    topic, out, group = f"items.{unique}", f"out.{unique}", f"g.{unique}"
    ensure_topics(settings, [TopicSpec(topic, "", partitions=1), TopicSpec(out, "", partitions=1)])
    bounded = settings.model_copy(update={"max_event_bytes": 2000})

    def handler(item: Item, ctx: Context) -> None:
        pad = "x" * (4000 if item.n == 1 else 10)
        ctx.emit(out, Envelope(type="quartet.test.Big.v1", source="/tests", subject=f"n{item.n}", data={"pad": pad}))

    runner = _runner_thread(ConsumerRunner(bounded, group, [Subscription(topic, handler, Item)], mode=mode))
    try:
        publish_items(settings, topic, 3, keys=1)
        wait_until(lambda: len(list_dead_letters(settings, topic)) == 1, 60, "the oversized output's input")
        wait_until(lambda: len(committed_events(settings, out)) == 2, 60, "the outputs around it")
    finally:
        runner.stop()
    (letter,) = list_dead_letters(settings, topic)
    assert letter.reason["dlq_error_type"] == "EventTooLarge"
    assert letter.reason["dlq_error_message"].startswith("event quartet.test.Big.v1 for job n1 is ")
    assert letter.reason["dlq_error_message"].endswith(" bytes, limit 2000")
    assert letter.reason["dlq_attempts"] == "1"
    assert sorted(e.subject or "" for e in committed_events(settings, out)) == ["n0", "n2"]


def test_redis_stopped_mid_stream_processing_continues_and_caching_resumes(
    settings: KernelSettings, servers: Servers, engine: Engine, unique: str
) -> None:
    topic, group, run = f"items.{unique}", f"g.{unique}", unique
    ensure_topics(settings, [TopicSpec(topic, "")])
    cache = ResilientRedis(settings)
    runner = _runner_thread(
        ConsumerRunner(
            settings,
            group,
            [Subscription(topic, lambda i, c: record_effect(engine, run, group, c, i.n), Item)],
            redis=cache,
        )
    )
    probe = DedupCache(ResilientRedis(settings), group, settings.idempotency_ttl_s)

    def cached(ids: list[str]) -> int:
        return len(probe.known(ids))

    try:
        before = publish_items(settings, topic, 200)
        wait_until(lambda: len(effect_counts(engine, run)) == 200, 60, "the first 200")
        wait_until(lambda: cached(before) == 200, 30, "the first 200 remembered in Redis")
        servers.stop_redis()
        during = publish_items(settings, topic, 200, start=200)
        wait_until(lambda: len(effect_counts(engine, run)) == 400, 60, "200 more while Redis is down")
        servers.start_redis()
        # The runner may still be inside its back-off window for the first records after the restart, so
        # keep the stream going until a batch is remembered again: that is caching resuming by itself.
        sent = 400
        deadline = time.monotonic() + 60
        while True:
            probe_batch = publish_items(settings, topic, 20, start=sent)
            sent += 20
            wait_until(lambda t=sent: len(effect_counts(engine, run)) == t, 60, "the stream after Redis returned")
            time.sleep(0.5)
            if cached(probe_batch) == 20:
                break
            assert time.monotonic() < deadline, "caching did not resume within 60 s of Redis returning"
        after = publish_items(settings, topic, 200, start=sent)
        sent += 200
        wait_until(lambda: len(effect_counts(engine, run)) == sent, 60, "200 more after caching resumed")
        wait_until(lambda: cached(after) == 200, 30, "all of them remembered in Redis")
        assert cached(during) == 0
    finally:
        runner.stop()
    counts = effect_counts(engine, run)
    assert len(counts) == sent
    assert max(counts.values()) == 1


def test_transactional_sigkill_between_produce_and_commit_yields_one_output_per_input(
    settings: KernelSettings, workers: Workers, unique: str, tmp_path: Path
) -> None:
    topic, out, group = f"in.{unique}", f"out.{unique}", f"tx.{unique}"
    ensure_topics(settings, [TopicSpec(topic, ""), TopicSpec(out, "")])
    ids = publish_items(settings, topic, 600)
    marker = tmp_path / "in-window"
    common = ["--topic", topic, "--group", group, "--run", unique, "--mode", "transactional", "--out-topic", out]
    for _ in range(2):
        marker.unlink(missing_ok=True)
        proc = workers.start(*common, "--pause-before-commit-s", "30", "--marker", str(marker), instance="w1")
        wait_until(marker.exists, 120, "the worker to sit between produce and commit")
        workers.kill9(proc)
    final = workers.start(*common, instance="w1")

    def outputs() -> list[Envelope]:
        # Read after the worker committed every input (or while polling for that): with its offsets committed in
        # the same transactions as its outputs, nothing more can come, so there is nothing to wait for.
        return committed_events(settings, out)

    wait_until(lambda: len({e.subject for e in outputs()}) == len(ids), 180, "an output for every input", 2)
    # A restarted worker must rebuild its dedup state from the changelog and skip re-published job ids.
    workers.kill9(final)
    workers.start(*common, instance="w1")
    again = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    originals = [r for _, r in zip(range(50), again, strict=False)]
    again.close()
    raw = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    for r in originals:
        raw.send(topic, key=r.key, value=r.value, headers=r.headers)
    raw.flush()
    raw.close()
    probe = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group, enable_auto_commit=False)
    parts = [TopicPartition(topic, p) for p in probe.partitions_for_topic(topic)]

    def consumed_all() -> bool:
        return sum(probe.committed(tp) or 0 for tp in parts) == len(ids) + len(originals)

    wait_until(consumed_all, 120, "the restarted worker to consume the re-published ids", 1)
    probe.close()
    got = outputs()
    per_input: dict[str | None, int] = {}
    for e in got:
        per_input[e.subject] = per_input.get(e.subject, 0) + 1
    assert set(per_input) == set(ids)
    assert max(per_input.values()) == 1, "a read_committed reader saw an input's output twice"
    raw_count = len(records_to_end(settings, [out], committed=False))
    assert raw_count > len(ids), "the kills must have left aborted output behind for this test to mean anything"


class _Caller:
    """Posts to the accepting API in a loop on its own thread, counting what it accepted and refused."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.accepted: list[str] = []
        self.accepted_after_restart: list[str] = []
        self.refused = 0
        self.stop = threading.Event()
        self.restarted = threading.Event()
        self.thread = threading.Thread(target=self._loop)

    def _loop(self) -> None:
        from fastapi.testclient import TestClient

        with TestClient(self.app) as client:
            n = 0
            while not self.stop.is_set():
                r = client.post(f"/items/{n}")
                if r.status_code == 202:
                    self.accepted.append(r.json()["id"])
                    if self.restarted.is_set():
                        self.accepted_after_restart.append(r.json()["id"])
                else:
                    assert r.status_code == 503
                    assert r.headers["content-type"] == "application/problem+json"
                    self.refused += 1
                n += 1


def _accepting_api(producer: Producer, topic: str) -> Any:
    """An API that answers 202 only once the broker has acknowledged the message, else a 503 problem."""
    from kafka.errors import KafkaError
    from quartet_shared.http import Problem, create_app

    app = create_app(title="accepting api")

    @app.post("/items/{n}", status_code=202)
    def accept(n: int) -> dict[str, str]:
        env = Envelope.of(Item(n=n), source="/tests/api", key=f"k{n % 10}")
        try:
            producer.send_confirmed(topic, env, timeout_s=3)
        except KafkaError as exc:
            raise Problem(503, "Broker unavailable", str(exc)) from exc
        return {"id": env.id}

    return app


@pytest.mark.parametrize("shutdown", ["clean", "sigkill"])
def test_broker_down_for_10s_while_the_api_accepts_every_accepted_message_arrives_once(
    settings: KernelSettings, servers: Servers, unique: str, shutdown: str
) -> None:
    topic = f"accepted.{unique}"
    ensure_topics(settings, [TopicSpec(topic, "")])
    producer = Producer(settings)
    caller = _Caller(_accepting_api(producer, topic))
    caller.thread.start()
    try:
        time.sleep(3)
        # A SIGKILLed broker writes nothing on its way out: what it acknowledged must survive its log recovery.
        (servers.stop_kafka if shutdown == "clean" else servers.kill_kafka)()
        time.sleep(10)
        servers.start_kafka()
        caller.restarted.set()
        wait_until(lambda: len(caller.accepted_after_restart) >= 20, 120, "the API to accept again after the restart")
        assert caller.refused > 0, "the API must refuse while the broker is down"
    finally:
        caller.stop.set()
        caller.thread.join(60)
    # Records refused at the API may still be in the producer's buffer; they are allowed to arrive (once).
    producer.flush(timeout_s=90)
    producer.close()
    seen: dict[str, int] = {}
    # The producer is closed: everything it will ever write is on the topic.
    for e in committed_events(settings, topic):
        seen[e.id] = seen.get(e.id, 0) + 1
    missing = [i for i in caller.accepted if i not in seen]
    assert not missing, f"{len(missing)} accepted messages never arrived"
    assert max(seen.values()) == 1, "a message arrived twice"
    assert len(caller.accepted) > 50


def test_sigterm_drains_commits_and_exits_within_30s(
    settings: KernelSettings, engine: Engine, workers: Workers, unique: str
) -> None:
    topic, group, run = f"items.{unique}", f"g.{unique}", unique
    ensure_topics(settings, [TopicSpec(topic, "")])
    ids = publish_items(settings, topic, 2000)
    proc = workers.start("--topic", topic, "--group", group, "--run", run, "--sleep-ms", "5")
    wait_until(lambda: sum(effect_counts(engine, run).values()) >= 200, 120, "200 effects before SIGTERM")
    started = time.monotonic()
    proc.terminate()
    assert proc.wait(30) == 0
    assert time.monotonic() - started < 30
    done = sum(effect_counts(engine, run).values())
    assert done < len(ids), "SIGTERM must land mid-stream"
    probe = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group, enable_auto_commit=False)
    committed = sum(probe.committed(TopicPartition(topic, p)) or 0 for p in probe.partitions_for_topic(topic))
    probe.close()
    assert committed == done, "a clean stop commits exactly what it finished"
    workers.start("--topic", topic, "--group", group, "--run", run)
    wait_until(lambda: len(effect_counts(engine, run)) == len(ids), 180, "every message's effect")
    counts = effect_counts(engine, run)
    assert max(counts.values()) == 1
