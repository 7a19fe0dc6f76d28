"""Recovery time as issue 18 states it, for the fault tests: from the fault until a probe written into every
partition at that moment has its output, as a read_committed reader sees it. A steady publisher keeps work under
way, so each fault strikes a batch in flight, and a tailing reader notes when each output first appeared."""

from __future__ import annotations

import os
import statistics
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from quartet_contracts.envelope import Envelope
from quartet_contracts.topics import TopicSpec
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics
from quartet_tools.harness.cluster import ClusterServers
from quartet_tools.harness.effects import Item, publish_items

from tests.support.cluster_records import Reader
from tests.support.servers import Servers

KEYS = 12
# Inputs arrive in small batches all along, so a fault finds a transaction open.
BATCH, BATCH_EVERY_S = 10, 0.5
# A test reads how many faults to inject in turn from here (1 unless measuring), at most 10.
REPEATS_VARIABLE = "QUARTET_RECOVERY_REPEATS"


def repeats() -> int:
    """How many faults a recovery test injects in turn: `QUARTET_RECOVERY_REPEATS`, 1 unless set, at most 10."""
    return max(1, min(10, int(os.environ.get(REPEATS_VARIABLE) or "1")))


@dataclass
class Topology:
    """The session's one broker or its 3-node cluster: settings pointed at it, its topics, and a leader kill."""

    name: str
    settings: KernelSettings
    servers: Servers | None = None
    cluster: ClusterServers | None = None

    def new_topic(self, name: str, partitions: int | None = None) -> str:
        """Create `name` as the kernel does here (on the cluster RF 3, min ISR 2, every replica in sync)."""
        if self.cluster is not None:
            return self.cluster.new_topic(name, partitions)
        ensure_topics(self.settings, [TopicSpec(name, "", partitions=partitions)])
        return name

    def kill_leader(self, topic: str, partition: int = 0) -> int:
        """SIGKILL the node leading `topic`'s `partition` and say which; the lone broker is started again at once
        (as its supervisor would), a cluster's node stays down until `revive`."""
        if self.cluster is not None:
            node = self.cluster.leader(topic, partition)
            self.cluster.kill(node)
            return node
        assert self.servers is not None
        self.servers.kill_kafka()
        self.servers.start_kafka()
        return 1

    def revive(self, topics: Iterable[str]) -> None:
        """Bring every killed node back and wait until `topics` are fully replicated again."""
        if self.cluster is not None:
            self.cluster.heal()
            self.cluster.wait_isr_full(topics)


@dataclass
class Tail(Reader):
    """A read_committed reader of every partition of a topic, in a thread, noting when each subject first came."""

    first: dict[str, float] = field(default_factory=dict)
    limit_s: float = 1800.0
    thread: threading.Thread | None = None

    def start(self) -> Tail:  # type: ignore[override]
        """Read in a thread until `close`."""
        self.thread = super().start()
        return self

    def close(self) -> None:
        """Read up to the end offsets, stop, and report an error the reader met."""
        self.done.set()
        if self.thread is not None:
            self.thread.join(30)
        assert not self.error, self.error

    def _keep(self, envelopes: list[Envelope]) -> None:
        now = time.monotonic()
        for envelope in envelopes:
            self.first.setdefault(envelope.subject or "", now)
        super()._keep(envelopes)

    def wait_for(self, subjects: Iterable[str], timeout_s: float, what: str) -> float:
        """When the last of `subjects` first came (time.monotonic()); fails naming `what` after `timeout_s`."""
        wanted = list(subjects)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert not self.error, self.error
            if all(s in self.first for s in wanted):
                return max(self.first[s] for s in wanted)
            time.sleep(0.05)
        missing = [s for s in wanted if s not in self.first]
        raise AssertionError(f"{len(missing)} of {len(wanted)} {what} without an output after {timeout_s:.0f} s")


@dataclass
class Feeder:
    """Publishes a batch of keyed inputs every half second in a thread while it runs; keeps their ids."""

    settings: KernelSettings
    topic: str
    batch: int = BATCH
    ids: list[str] = field(default_factory=list)
    running: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> Feeder:
        """Publish from now on."""
        self.running.set()
        self.thread = threading.Thread(target=self._feed, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop publishing and wait until the last batch is confirmed (and counted)."""
        self.running.clear()
        if self.thread is not None:
            self.thread.join(180)

    def _feed(self) -> None:
        for n in range(5000):
            if not self.running.is_set():
                return
            self.ids.extend(publish_items(self.settings, self.topic, self.batch, start=n * self.batch, keys=KEYS))
            time.sleep(BATCH_EVERY_S)


def probe(settings: KernelSettings, topic: str, partitions: int) -> list[str]:
    """One input into each partition of `topic` (each under a key of its own, so no key's order is touched); their
    ids, once every one is acknowledged (a write blocked by an election waits for it: that is part of the fault)."""
    producer = Producer(settings)
    try:
        ids = []
        for partition in range(partitions):
            envelope = Envelope.of(Item(n=0), source="/tests/probe", id=str(uuid.uuid4()), key=f"probe-{uuid.uuid4()}")
            producer.send(topic, envelope, partition=partition)
            ids.append(envelope.id)
        producer.flush(timeout_s=120)
        return ids
    finally:
        producer.close()


def summary(name: str, times: list[float]) -> str:
    """A line with each recovery time, their median and their maximum."""
    each = ", ".join(f"{t:.1f}" for t in times)
    return f"{name}: recovery {each} s; median {statistics.median(times):.1f} s, max {max(times):.1f} s"
