"""Keyed records for the cluster's fault tests: write them confirmed, read them committed, count them per id."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from quartet_contracts.envelope import Envelope, decode
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings
from quartet_tools.harness.effects import Item
from quartet_tools.harness.records import committed_reader

ITEM = "quartet.test.Item.v1"
KEYS = 12


def item(n: int) -> Envelope:
    """The n-th record: its key cycles over KEYS keys, its data counts up within its key."""
    return Envelope(type=ITEM, source="test", data=Item(n=n // KEYS).model_dump(), key=f"k{n % KEYS}")


@dataclass
class Reader:
    """A read_committed consumer on every partition of a topic, in a thread, keeping what it sees in order."""

    settings: KernelSettings
    topic: str
    seen: list[Envelope] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    error: list[BaseException] = field(default_factory=list)
    limit_s: float = 300.0

    def read_to_end(self) -> list[Envelope]:
        """Read everything committed up to the end offsets now, in this thread."""
        self.done.set()
        self._run()
        assert not self.error, self.error
        return self.seen

    def start(self) -> threading.Thread:
        """Read in a thread until `done` is set and the end offsets are reached."""
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        try:
            consumer, partitions = committed_reader(self.settings, self.topic)
        except BaseException as exc:  # the test thread reports it
            self.error.append(exc)
            return
        try:
            deadline = time.monotonic() + self.limit_s
            while time.monotonic() < deadline and not (self.done.is_set() and self._at_end(consumer, partitions)):
                for batch in consumer.poll(timeout_ms=100).values():
                    self._keep([decode(r.key, r.value, r.headers) for r in batch])
        except BaseException as exc:  # the test thread reports it
            self.error.append(exc)
        finally:
            consumer.close()

    def _keep(self, envelopes: list[Envelope]) -> None:
        """Keep a polled batch."""
        self.seen.extend(envelopes)

    @staticmethod
    def _at_end(consumer: KafkaConsumer, partitions: list[TopicPartition]) -> bool:
        end = consumer.end_offsets(partitions)
        return all(consumer.position(tp) >= end[tp] for tp in partitions)


def assert_each_once(expected: Iterable[str], seen: Iterable[str | None], what: str) -> None:
    """Each expected id seen exactly once and nothing else seen: none lost, doubled or unexpected."""
    counts = Counter(seen)
    wanted = set(expected)
    lost = wanted - set(counts)
    doubled = [i for i, c in counts.items() if c > 1]
    unexpected = set(counts) - wanted
    assert not lost, f"{len(lost)} {what} lost, e.g. {sorted(lost)[:3]}"
    assert not doubled, f"{len(doubled)} {what} seen twice (a double, or an aborted read), e.g. {doubled[:3]}"
    assert not unexpected, f"{len(unexpected)} unexpected {what}, e.g. {sorted(map(str, unexpected))[:3]}"


def assert_counts_in_key_order(seen: list[Envelope]) -> None:
    """Within each key the records' counts (`data["n"]`) come in ascending order."""
    per_key: dict[str | None, list[int]] = defaultdict(list)
    for e in seen:
        per_key[e.key].append(int(e.data["n"]))
    disordered = {key: ns[:20] for key, ns in per_key.items() if ns != sorted(ns)}
    assert not disordered, f"keys out of order: {list(disordered.items())[:2]}"


def assert_each_once_in_key_order(sent: list[Envelope], seen: list[Envelope]) -> None:
    """Every sent id seen exactly once, nothing else seen, and within each key the counts in the order sent."""
    assert_each_once((e.id for e in sent), (e.id for e in seen), "records")
    assert_counts_in_key_order(seen)


def confirmed(settings: KernelSettings, topic: str, envelope: Envelope, timeout_s: float) -> bool:
    """True if a fresh idempotent acks=all producer gets the write acknowledged within `timeout_s`."""
    timeout_ms = int(timeout_s * 1000)
    # The delivery timeout ends the record's retries with the wait: one refused now is not written behind
    # the test's back once a node returns, and the producer closes without waiting on it.
    producer = Producer(
        settings, max_block_ms=timeout_ms, delivery_timeout_ms=timeout_ms, request_timeout_ms=min(timeout_ms, 5_000)
    )
    try:
        producer.send_confirmed(topic, envelope, timeout_s=timeout_s + 10)
        return True
    except KafkaError:
        return False
    finally:
        producer.close(timeout_s=10)


def write_again_then_count(
    settings: KernelSettings, topic: str, acknowledged: list[Envelope], unacknowledged: list[Envelope], first_n: int
) -> None:
    """After a fault ends: a new write must be acknowledged within a few tries, then every acknowledged record is
    there exactly once and none that was not acknowledged is there twice."""
    # Each try is a new record: one that timed out may still have been written, and is counted apart.
    attempts = [item(n) for n in range(first_n, first_n + 8)]
    after = next((e for e in attempts if confirmed(settings, topic, e, 15)), None)
    assert after is not None, "writes did not succeed again once the fault was over"
    counts = Counter(e.id for e in Reader(settings, topic).read_to_end())
    assert all(counts[e.id] == 1 for e in [*acknowledged, after]), "an acknowledged write was lost or doubled"
    assert all(counts[e.id] <= 1 for e in [*unacknowledged, *attempts]), "an unacknowledged write was doubled"


def assert_one_output_per_input(ids: list[str], outputs: list[Envelope]) -> None:
    """Each input's output (its subject is the input's id) seen once, nothing else, each key's counts in order."""
    assert_each_once(ids, (e.subject for e in outputs), "outputs")
    assert_counts_in_key_order(outputs)
