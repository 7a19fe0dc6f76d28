"""Kernel overhead against raw kafka-python, on private native servers: consumer throughput, producer, latency.

Usage: ``uv run python bench/bench_kernel.py [--quick] [--messages N] [--profile]``; prints a Markdown section.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import multiprocessing
import pstats
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata
from quartet_contracts.envelope import Envelope
from quartet_contracts.registry import Message, event_type
from quartet_contracts.topics import TopicSpec
from quartet_shared.cache import ResilientRedis
from quartet_shared.clients import producer_config
from quartet_shared.consumer import MAX_POLL_RECORDS, ConsumerRunner, Context, Mode, Subscription
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics
from quartet_tools.infra import Stack

FULL_MESSAGES = 100_000
QUICK_MESSAGES = 5_000
VALUE_BYTES = 1024
PARTITIONS = 6
LATENCY_RATE = 2_000
SOURCE = "/quartet/bench"

PRODUCER_PASSES = 3
PRODUCER_CHUNK = 5_000
CONSUMER_WARMUPS = 3
# A raw loop that has not read its records by then has stalled (at full size a round takes seconds, tens under load).
RAW_LOOP_LIMIT_S = 600.0
# Per-record µs of (b), (c) and (e) in the last run of this process.
PER_RECORD_US: dict[str, float] = {}
CONSUMER_ROUNDS = 9
TARGET_AT_LEAST_ONCE = 0.8
TARGET_TRANSACTIONAL = 0.5
TARGET_PRODUCER = 0.9


@event_type("quartet.bench.Tick.v1", topic="bench.input")
class Tick(Message):
    """A benchmark record: its sequence number, when it was sent, and padding up to 1 KiB."""

    seq: int
    sent_ns: int
    pad: str


@event_type("quartet.bench.Tock.v1", topic="bench.output")
class Tock(Message):
    """The transactional variant's one output per input."""

    seq: int


def make_tick(seq: int) -> Tick:
    """A Tick whose envelope value (the JSON data) is VALUE_BYTES long, give or take the digits of seq."""
    sent_ns = time.time_ns()
    bare = len(Envelope.of(Tick(seq=seq, sent_ns=sent_ns, pad=""), source=SOURCE).to_kafka()[1])
    return Tick(seq=seq, sent_ns=sent_ns, pad="x" * max(0, VALUE_BYTES - bare))


def make_envelopes(count: int) -> list[Envelope]:
    """`count` 1 KiB CloudEvents keyed over 1,000 job ids."""
    template = make_tick(0)
    out = []
    for seq in range(count):
        tick = Tick(seq=seq, sent_ns=template.sent_ns, pad=template.pad)
        out.append(Envelope.of(tick, source=SOURCE, key=f"job-{seq % 1000}", subject=f"job-{seq % 1000}"))
    return out


# ---- producers ---------------------------------------------------------------------------------------------


@dataclass
class ProducerRun:
    """Seconds each side spent sending and flushing its chunks, and the per-chunk kernel/raw ratios."""

    messages: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: {"raw": 0.0, "kernel": 0.0})
    pair_ratios: list[float] = field(default_factory=list)

    def rate(self, side: str) -> float:
        """Records per second over every chunk of one side."""
        return self.messages / self.seconds[side]


def fill(settings: KernelSettings, topic: str, envelopes: list[Envelope]) -> None:
    """Send the envelopes through the kernel's Producer, unmeasured (the consumers' input)."""
    producer = Producer(settings)
    try:
        for env in envelopes:
            producer.send(topic, env)
        producer.flush()
    finally:
        producer.close()


def produce_pairs(
    settings: KernelSettings, raw_topic: str, kernel_topic: str, envelopes: list[Envelope], passes: int, chunk: int
) -> ProducerRun:
    """Both producers over the same envelopes, `passes` times, in alternating chunks each flushed and timed.

    The raw side sends the envelopes already encoded; the kernel side pays for encoding them. The broker's
    own rate drifts by a fifth from one chunk to the next here (its JVM, its disk), so a long run per side
    would hand that drift to one side; short chunks taken in turns, the order swapped every pair, hand it to
    both, and several passes shrink what is left of it in the totals.
    """
    records = [env.to_kafka() for env in envelopes]
    run = ProducerRun()
    for _ in range(passes):
        raw, kernel = KafkaProducer(**producer_config(settings)), Producer(settings)
        try:
            # Connections and metadata are made outside the timing.
            key, value, headers = records[0]
            raw.send(raw_topic, key=key, value=value, headers=headers).get(timeout=30)
            kernel.send(kernel_topic, envelopes[0]).get(timeout=30)
            for i, start in enumerate(range(0, len(envelopes), chunk)):
                stop = start + chunk
                took: dict[str, float] = {}
                for side in ("raw", "kernel") if i % 2 == 0 else ("kernel", "raw"):
                    began = time.perf_counter()
                    if side == "raw":
                        for key, value, headers in records[start:stop]:
                            raw.send(raw_topic, key=key, value=value, headers=headers)
                        raw.flush()
                    else:
                        for env in envelopes[start:stop]:
                            kernel.send(kernel_topic, env)
                        kernel.flush()
                    took[side] = time.perf_counter() - began
                    run.seconds[side] += took[side]
                run.messages += len(records[start:stop])
                run.pair_ratios.append(took["raw"] / took["kernel"])
        finally:
            raw.close()
            kernel.close()
    return run


# ---- consumers ---------------------------------------------------------------------------------------------


@dataclass
class Timing:
    """First record seen and last commit done, in perf_counter seconds, and the process CPU time between them."""

    count: int = 0
    first: float | None = None
    last_commit: float | None = None
    batches: int = 0
    commit_seconds: float = 0.0
    cpu_first: float = 0.0
    cpu_last: float = 0.0

    def begin(self) -> None:
        """Mark the first record."""
        self.first = time.perf_counter()
        self.cpu_first = time.process_time()

    def committed(self) -> None:
        """Mark a commit done (the last one marked ends the run)."""
        self.last_commit = time.perf_counter()
        self.cpu_last = time.process_time()

    def rate(self) -> float:
        """Messages per second from the first record to the last commit."""
        return self.count / self.seconds()

    def seconds(self) -> float:
        """From the first record to the last commit."""
        assert self.first is not None and self.last_commit is not None
        return self.last_commit - self.first

    def cpu_seconds(self) -> float:
        """CPU time of the whole process (every thread: the loop's and kafka-python's I/O thread) in that span."""
        return self.cpu_last - self.cpu_first

    @classmethod
    def merged(cls, *runs: Timing) -> Timing:
        """Several runs as one: their records over their summed durations."""
        return cls(
            count=sum(r.count for r in runs),
            first=0.0,
            last_commit=sum(r.seconds() for r in runs),
            batches=sum(r.batches for r in runs),
            commit_seconds=sum(r.commit_seconds for r in runs),
            cpu_last=sum(r.cpu_seconds() for r in runs),
        )


def raw_consumer(settings: KernelSettings, topic: str, group: str, max_poll_records: int) -> KafkaConsumer:
    """A bare kafka-python consumer reading `topic` from the start, committing by hand, read_committed."""
    return KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=max_poll_records,
    )


def _within(deadline: float, timing: Timing, expected: int) -> None:
    """Raise when a raw loop passes its deadline: a bare kafka-python consumer can stop fetching for good under
    load (the stall the kernel's runner watches for), and a benchmark must end rather than wait forever."""
    if time.monotonic() > deadline:
        raise TimeoutError(f"raw loop read {timing.count} of {expected} records in {RAW_LOOP_LIMIT_S:.0f} s")


def consume_raw(settings: KernelSettings, topic: str, expected: int, max_poll_records: int = 500) -> Timing:
    """A bare consume-and-commit loop: poll a batch (kafka-python's default 500 records), count it, commit, repeat."""
    timing = Timing()
    consumer = raw_consumer(settings, topic, f"bench-raw-{uuid.uuid4().hex[:8]}", max_poll_records)
    deadline = time.monotonic() + RAW_LOOP_LIMIT_S
    try:
        while timing.count < expected:
            _within(deadline, timing, expected)
            batch = consumer.poll(timeout_ms=200)
            if not batch:
                continue
            if timing.first is None:
                timing.begin()
            for records in batch.values():
                timing.count += len(records)
            consumer.commit()
            timing.committed()
    finally:
        consumer.close(autocommit=False)
    return timing


def consume_raw_transactional(settings: KernelSettings, topic: str, output: str, expected: int) -> Timing:
    """The same consume→produce work by hand: poll, produce one record per input, send offsets, commit."""
    timing = Timing()
    group = f"bench-raw-txn-{uuid.uuid4().hex[:8]}"
    consumer = raw_consumer(settings, topic, group, 2000)
    producer = KafkaProducer(**producer_config(settings, transactional_id=group, linger_ms=1000, batch_size=512 * 1024))
    producer.init_transactions()
    deadline = time.monotonic() + RAW_LOOP_LIMIT_S
    try:
        while timing.count < expected:
            _within(deadline, timing, expected)
            batch = consumer.poll(timeout_ms=200)
            if not batch:
                continue
            if timing.first is None:
                timing.begin()
            producer.begin_transaction()
            offsets = {}
            for tp, records in batch.items():
                for rec in records:
                    producer.send(output, key=rec.key, value=rec.value, headers=rec.headers)
                offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
                timing.count += len(records)
            started = time.perf_counter()
            producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
            producer.commit_transaction()
            timing.commit_seconds += time.perf_counter() - started
            timing.batches += 1
            timing.committed()
    finally:
        consumer.close(autocommit=False)
        producer.close()
    return timing


class _TimedRunner(ConsumerRunner):
    """The kernel runner, stamping when each batch's commit (or transaction commit) has returned."""

    def __init__(self, *args: Any, timing: Timing, expected: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timing = timing
        self._expected = expected
        if self.mode is not Mode.TRANSACTIONAL:
            return
        commit = self.commit.commit

        def timed_commit(consumer: KafkaConsumer, state: Any) -> None:
            started = time.perf_counter()
            commit(consumer, state)
            timing.commit_seconds += time.perf_counter() - started

        self.commit.commit = timed_commit  # type: ignore[method-assign]

    def _process_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        super()._process_batch(batch)
        self._timing.batches += 1
        if self._timing.count >= self._expected:
            # The run ends when the last offsets are committed, not when the commit interval would commit them.
            assert self.consumer is not None
            self.commit.settle(self.consumer)
            self.stopping.set()
        self._timing.committed()


def consume_kernel(
    settings: KernelSettings,
    topic: str,
    expected: int,
    mode: Mode,
    output_topic: str | None = None,
    profile: cProfile.Profile | None = None,
) -> Timing:
    """The kernel's ConsumerRunner with a counting handler (emitting one event per input when transactional)."""
    timing = Timing()

    def handle(tick: Tick, ctx: Context) -> None:
        if timing.first is None:
            timing.begin()
        timing.count += 1
        if output_topic is not None:
            ctx.emit(output_topic, Envelope.of(Tock(seq=tick.seq), source=SOURCE, key=ctx.envelope.key))

    redis = ResilientRedis(settings)
    runner = _TimedRunner(
        settings,
        f"bench-{mode.value}-{uuid.uuid4().hex[:8]}",
        [Subscription(topic, handle, model=Tick, retry=False)],
        mode=mode,
        redis=redis,
        timing=timing,
        expected=expected,
    )
    try:
        # In the calling thread, so that cProfile sees the loop.
        if profile is not None:
            profile.enable()
        try:
            runner.run()
        finally:
            if profile is not None:
                profile.disable()
    finally:
        redis.close()
    if runner.error is not None:
        raise runner.error
    return timing


# ---- latency -----------------------------------------------------------------------------------------------


@dataclass
class Latency:
    """Produce→consume latencies in milliseconds."""

    samples: list[float] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        """The p-th percentile (0..100)."""
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def paced_producer(bootstrap: str, topic: str, count: int, rate: int, pad: str) -> None:
    """Send `count` Ticks at `rate` msg/s, each stamped with its send time (run in its own process)."""
    producer = Producer(KernelSettings(kafka_bootstrap_servers=bootstrap, service_name="bench-paced"))
    try:
        per_tick = max(1, rate // 200)
        started = time.perf_counter()
        sent = 0
        while sent < count:
            wait = started + sent / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            for _ in range(min(per_tick, count - sent)):
                tick = Tick(seq=sent, sent_ns=time.time_ns(), pad=pad)
                producer.send(topic, Envelope.of(tick, source=SOURCE, key=f"job-{sent % 1000}"))
                sent += 1
        producer.flush()
    finally:
        producer.close()


def measure_latency(settings: KernelSettings, topic: str, seconds: float) -> Latency:
    """A paced producer at LATENCY_RATE msg/s in another process, and a kernel runner consuming here."""
    latency = Latency()
    warm = threading.Event()
    count = int(LATENCY_RATE * seconds)
    done = threading.Event()
    received = 0

    def handle(tick: Tick, _ctx: Context) -> None:
        nonlocal received
        if tick.seq < 0:
            warm.set()
            return
        latency.samples.append((time.time_ns() - tick.sent_ns) / 1e6)
        received += 1
        if received >= count:
            done.set()

    redis = ResilientRedis(settings)
    runner = ConsumerRunner(
        settings,
        f"bench-latency-{uuid.uuid4().hex[:8]}",
        [Subscription(topic, handle, model=Tick, retry=False)],
        redis=redis,
    )
    runner.start()
    try:
        # Wait until the runner owns its partitions and has consumed a warm-up record.
        producer = Producer(settings)
        try:
            deadline = time.monotonic() + 60
            while not warm.is_set() and time.monotonic() < deadline:
                producer.send(topic, Envelope.of(Tick(seq=-1, sent_ns=0, pad=""), source=SOURCE)).get(timeout=30)
                warm.wait(1.0)
        finally:
            producer.close()
        if not warm.is_set():
            raise RuntimeError("the latency consumer never started")
        # Another process, as in production: the producer must not share this process's GIL.
        child = multiprocessing.get_context("spawn").Process(
            target=paced_producer,
            args=(settings.kafka_bootstrap_servers, topic, count, LATENCY_RATE, make_tick(0).pad),
        )
        child.start()
        child.join(seconds * 5 + 60)
        if child.exitcode != 0:
            raise RuntimeError(f"the paced producer exited with {child.exitcode}")
        if not done.wait(60):
            raise RuntimeError(f"latency consumer received {received} of {count}")
    finally:
        runner.stop(30)
        redis.close()
    return latency


# ---- the run -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def private_stack() -> Iterator[KernelSettings]:
    """Native Kafka, Redis and PostgreSQL on free ports under a fresh temporary directory."""
    workdir = Path(tempfile.mkdtemp(prefix="quartet-bench-"))
    # The postgres user must be able to reach its data directory under this one.
    workdir.chmod(0o755)
    stack = Stack.at(workdir, standard_ports=False)
    try:
        stack.start()
        yield KernelSettings(
            kafka_bootstrap_servers=stack.kafka.bootstrap,
            redis_url=stack.redis.url,
            database_url=stack.postgres.url,
            service_name="bench",
            topic_partitions=PARTITIONS,
        )
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _quartiles(values: list[float]) -> str:
    if len(values) < 2:
        return "(one pair only)"
    low, _mid, high = statistics.quantiles(values, n=4)
    return f"{low:.2f} to {high:.2f}"


def _verdict(ratio: float, target: float) -> str:
    return f"met (≥ {target:.1f})" if ratio >= target else f"**missed** (< {target:.1f})"


def _top(profile: cProfile.Profile, limit: int = 18) -> str:
    out = io.StringIO()
    pstats.Stats(profile, stream=out).strip_dirs().sort_stats("tottime").print_stats(limit)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return "\n".join(lines[start:])


def log(message: str) -> None:
    """Progress on stderr, so that stdout stays the Markdown section."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run(quick: bool, messages: int | None = None, profile: bool = False) -> str:
    """Run every measurement on private servers and return the Markdown section."""
    count = messages or (QUICK_MESSAGES if quick else FULL_MESSAGES)
    latency_seconds = 3.0 if quick else 10.0
    with private_stack() as settings:
        suffix = uuid.uuid4().hex[:6]
        t_input, t_raw_out, t_kernel_out, t_output, t_latency = (
            f"bench.input.{suffix}",
            f"bench.raw-produce.{suffix}",
            f"bench.kernel-produce.{suffix}",
            f"bench.output.{suffix}",
            f"bench.latency.{suffix}",
        )
        topics = (t_input, t_raw_out, t_kernel_out, t_output, t_latency)
        ensure_topics(settings, [TopicSpec(t, "bench", partitions=PARTITIONS) for t in topics])
        log(f"building {count} envelopes")
        envelopes = make_envelopes(count)
        # The harness's own pre-built envelopes (hundreds of thousands of objects) would otherwise be walked by
        # every full collection during every measured run; a service holds nothing like them.
        gc.collect()
        gc.freeze()
        value_size = len(envelopes[0].to_kafka()[1])

        # Filling the consumers' input first also warms the broker up: its first heavy writes run at a third
        # of its later rate, which would otherwise land on whichever producer went first.
        log("filling the input topic (unmeasured)")
        fill(settings, t_input, envelopes)
        passes = PRODUCER_PASSES if not quick else 1
        chunk = max(1, min(PRODUCER_CHUNK, count // 20))
        log(f"producers: raw KafkaProducer and kernel Producer.send, {passes} passes of alternating chunks")
        prod = produce_pairs(settings, t_raw_out, t_kernel_out, envelopes, passes, chunk)
        raw_rate, wrapper_rate = prod.rate("raw"), prod.rate("kernel")

        # The broker's fetch path keeps getting faster over its first few heavy reads (the JVM compiling it),
        # and the raw loop, which waits on the broker more than the runner does, gains the most from that;
        # unmeasured reads go first, then rounds in rotating order, so that no side always runs first.
        warmups = CONSUMER_WARMUPS if not quick else 1
        for i in range(warmups):
            log(f"warm-up read {i + 1}: unmeasured")
            consume_raw(settings, t_input, count)
        rounds: list[dict[str, Timing]] = []
        sides = ["a", "b", "c", "a2", "b0"]
        every_batch = settings.model_copy(update={"consumer_commit_interval_s": 0.0})
        for r in range(CONSUMER_ROUNDS if not quick else 1):
            order = sides[r % len(sides) :] + sides[: r % len(sides)]
            log(f"consumer round {r + 1}: {', '.join(order)}")
            timings: dict[str, Timing] = {}
            for side in order:
                if side == "a":
                    timings[side] = consume_raw(settings, t_input, count)
                elif side == "a2":
                    timings[side] = consume_raw(settings, t_input, count, MAX_POLL_RECORDS)
                elif side == "b0":
                    timings[side] = consume_kernel(every_batch, t_input, count, Mode.AT_LEAST_ONCE)
                else:
                    mode = Mode.AT_LEAST_ONCE if side == "b" else Mode.TRANSACTIONAL
                    timings[side] = consume_kernel(settings, t_input, count, mode)
            rounds.append(timings)
        a, b, c, a2, b0 = (Timing.merged(*(t[side] for t in rounds)) for side in sides)
        log("consume→produce (d): raw kafka-python transactional loop, one output per input")
        d = consume_raw_transactional(settings, t_input, t_raw_out, count)
        log("consume→produce (e): kernel runner, transactional, one output event per input")
        e = consume_kernel(settings, t_input, count, Mode.TRANSACTIONAL, output_topic=t_output)
        log(f"latency: {LATENCY_RATE} msg/s for {latency_seconds:.0f} s")
        lat = measure_latency(settings, t_latency, latency_seconds)

        profiles: list[tuple[str, cProfile.Profile]] = []
        if profile:
            for label, mode, out in (
                ("(b) at-least-once", Mode.AT_LEAST_ONCE, None),
                ("(c) transactional", Mode.TRANSACTIONAL, t_output),
            ):
                log(f"profiling {label}")
                prof = cProfile.Profile()
                consume_kernel(settings, t_input, count, mode, output_topic=out, profile=prof)
                profiles.append((label, prof))

    # bench_micro, run next in the same process, weighs each micro-optimization against these.
    PER_RECORD_US.update({"b": 1e6 / b.rate(), "c": 1e6 / c.rate(), "e": 1e6 / e.rate()})
    ratios_b = [t["b"].rate() / t["a"].rate() for t in rounds]
    ratios_c = [t["c"].rate() / t["a"].rate() for t in rounds]
    per_round_b = ", ".join(f"{r:.2f}" for r in ratios_b)
    per_round_c = ", ".join(f"{r:.2f}" for r in ratios_c)
    per_round_a = ", ".join(f"{t['a'].rate():,.0f}" for t in rounds)
    ratio_b, ratio_c, ratio_p = b.rate() / a.rate(), c.rate() / a.rate(), wrapper_rate / raw_rate
    ratio_e = e.rate() / d.rate()
    ratios_b2 = [t["b"].rate() / t["a2"].rate() for t in rounds]
    lines = [
        "## Kernel overhead (bench/bench_kernel.py)",
        "",
        f"{count:,} CloudEvents of {value_size} B values on one topic of {PARTITIONS} partitions; one native "
        "KRaft broker, Redis and PostgreSQL on this machine, started by the benchmark. Each consumer uses a "
        "fresh group and reads every record; rates run from the first record to the last commit. The "
        "benchmark's own pre-built envelopes are frozen out of the garbage collector (`gc.freeze`) first.",
        "",
        "| measurement | msg/s | ratio to raw | target | verdict |",
        "|---|---:|---:|---:|---|",
        f"| (a) raw kafka-python poll + commit per batch | {a.rate():,.0f} | 1.00 | | |",
        f"| (b) ConsumerRunner at-least-once + Redis guard | {b.rate():,.0f} | {ratio_b:.2f} | "
        f"{TARGET_AT_LEAST_ONCE} | {_verdict(ratio_b, TARGET_AT_LEAST_ONCE)} |",
        f"| (c) ConsumerRunner transactional (changelog + offsets in each transaction) | {c.rate():,.0f} | "
        f"{ratio_c:.2f} | {TARGET_TRANSACTIONAL} | {_verdict(ratio_c, TARGET_TRANSACTIONAL)} |",
        f"| raw KafkaProducer(acks=all, idempotent) | {raw_rate:,.0f} | 1.00 | | |",
        f"| kernel Producer.send (encoding included) | {wrapper_rate:,.0f} | {ratio_p:.2f} | "
        f"{TARGET_PRODUCER} | {_verdict(ratio_p, TARGET_PRODUCER)} |",
        "",
        f"Per round, (b)/(a): {per_round_b} (median {statistics.median(ratios_b):.2f}); (c)/(a): {per_round_c} "
        f"(median {statistics.median(ratios_c):.2f}); (a) itself ran at {per_round_a} msg/s: the raw loop, which "
        "mostly waits on the broker, varies far more from round to round than the runner does. "
        f"The table merges the rounds (all their records over all their time), after {warmups} "
        "unmeasured warm-up reads.",
        "",
        f"The producers sent the same {count:,} envelopes {passes} times over, in alternating chunks of "
        f"{chunk:,}, each chunk sent and flushed, the order swapped every pair, after an unmeasured "
        "fill of the input topic had warmed the broker up. The raw producer sends the records already encoded; "
        "the kernel's encodes each envelope (CloudEvents headers and JSON value) in its timing. Per pair of "
        f"chunks, kernel/raw: median {statistics.median(prod.pair_ratios):.2f}, middle half "
        f"{_quartiles(prod.pair_ratios)}, over {len(prod.pair_ratios)} pairs; the table's ratio is every chunk's "
        "records over every chunk's time.",
        "",
        f"The runner polls {MAX_POLL_RECORDS:,} records per batch (its default: a batch's poll, Redis lookup and "
        "record, and synchronous commit cost the same whatever its size), where the raw loop (a) keeps "
        "kafka-python's default of 500. Like for like, against a raw loop that also polls and commits "
        f"{MAX_POLL_RECORDS:,} at a time (a2, {a2.rate():,.0f} msg/s, in the same rounds), (b) reaches "
        f"{b.rate() / a2.rate():.2f} (per round {', '.join(f'{r:.2f}' for r in ratios_b2)}); the gap between "
        "that figure and (b)/(a) is what batching alone buys.",
        "",
        f"(b) commits its offsets once a second (`consumer_commit_interval_s`, 1 s; each batch is still flushed "
        f"and its ids recorded before the next poll). Committing after every batch instead (b0, in the same "
        f"rounds) ran at {b0.rate():,.0f} msg/s, {b0.rate() / a.rate():.2f} of (a) and {b0.rate() / a2.rate():.2f} "
        f"of (a2): the interval buys {100 * (b.rate() / b0.rate() - 1):.0f} %.",
        "",
        f"Per record, (a) costs {1e6 / a.rate():.1f} µs (kafka-python fetching and parsing it, and the commits) "
        f"and (b) {1e6 / b.rate():.1f} µs: the runner adds {1e6 / b.rate() - 1e6 / a.rate():.1f} µs for the "
        "CloudEvents decode, the typed validation, the handler's context, metrics and log context, and what is "
        "left of the batch's Redis lookup and record once they are pipelined (the lookup is sent before the batch "
        "is decoded, the record before its offsets commit). At 0.8, that addition is a quarter of (a)'s cost.",
        "",
        f"Process CPU per record (every thread of the benchmark process, kafka-python's I/O thread included): "
        f"(a) {1e6 * a.cpu_seconds() / a.count:.1f} µs, (b) {1e6 * b.cpu_seconds() / b.count:.1f} µs, so the "
        f"CPU alone would put (b)/(a) at {a.cpu_seconds() / b.cpu_seconds():.2f}. The CPU was busy "
        f"{100 * a.cpu_seconds() / a.seconds():.0f} % of (a)'s time and {100 * b.cpu_seconds() / b.seconds():.0f} % "
        "of (b)'s: the raw loop spends the rest waiting for the broker's fetches, and how long it waits is what "
        "moves its rate (and the ratio) from round to round.",
        "",
        f"(c) ran {c.batches} transactions ({c.count / max(1, c.batches):.0f} records each on average); "
        f"send_offsets_to_transaction + commit_transaction took {c.commit_seconds:.2f} s of "
        f"{c.seconds():.2f} s. (b) handled {b.batches} batches.",
        "",
        "Consume→produce, one output record per input, each batch one Kafka transaction. Producing a record "
        "costs kafka-python more than consuming one, so the peer here is the same loop written by hand:",
        "",
        "| measurement | msg/s | ratio to raw |",
        "|---|---:|---:|",
        f"| (d) raw kafka-python: poll, send, send_offsets_to_transaction, commit | {d.rate():,.0f} | 1.00 |",
        f"| (e) ConsumerRunner transactional, typed handler, `ctx.emit` per input | {e.rate():,.0f} | {ratio_e:.2f} |",
        "",
        f"(e) against (a), the consume-only loop: {e.rate() / a.rate():.2f}.",
        "",
        f"Produce→consume latency through the kernel runner, paced producer at {LATENCY_RATE:,} msg/s for "
        f"{latency_seconds:.0f} s ({len(lat.samples):,} samples): p50 {lat.percentile(50):.1f} ms, "
        f"p99 {lat.percentile(99):.1f} ms, max {max(lat.samples):.1f} ms, mean {statistics.fmean(lat.samples):.1f} ms.",
        "",
    ]
    for label, prof in profiles:
        lines += [f"### Profile of {label} (cProfile, by own time)", "", "```", _top(prof), "```", ""]
    return "\n".join(lines)


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_MESSAGES:,} messages, a short latency run")
    parser.add_argument("--messages", type=int, default=None, help="how many messages (overrides --quick)")
    parser.add_argument("--profile", action="store_true", help="also profile (b) and (c) with cProfile")
    args = parser.parse_args()
    print(run(args.quick, args.messages, args.profile))


if __name__ == "__main__":
    main()
