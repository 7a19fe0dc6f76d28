"""The simulator's Kafka side: publishing jobs, duplicates and garbage; collecting results, dead letters and
events for the audit; sampling the workers' consumer lag.

Publishing never blocks the schedule on the broker: sends are asynchronous, and each job records whether
the broker acknowledged one of its publishes (acks=all, idempotent producer: the contract's "accepted").
The collector reads with `read_committed` from the end offsets it found before the first publish, so it
sees exactly the committed output of this run.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError
from pydantic import BaseModel
from quartet_contracts.envelope import Envelope, EnvelopeError, decode, header_map
from quartet_shared.clients import RECONNECT_BACKOFF_MAX_MS, kafka_admin, kafka_consumer, wait_for_partitions
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings

from simulator.domain.audit import CorruptRecord, DeadLetterSeen, EventSeen, GarbageSent, ResultSeen, SentJob
from simulator.domain.garbage import SOURCE, garbage_message
from simulator.domain.scenario import GarbageFlavour
from simulator.probes import AbortedProbes

log = logging.getLogger(__name__)

# kafka-python backs off up to 30 s between reconnects by default; after a broker restart the simulator
# wants to see the broker again within a second, so that its own clients never hide the system's recovery.


# ---- publishing ----------------------------------------------------------------------------------------


@dataclass
class _Published:
    kind: str
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    submitted_at: float
    large: bool = False
    publishes: int = 0
    acks: int = 0
    errors: list[str] = field(default_factory=list)


class Publisher:
    """Publishes jobs, byte-identical duplicates and garbage, recording every acknowledgement."""

    def __init__(self, settings: KernelSettings, *, delivery_timeout_s: float = 120.0) -> None:
        delivery_ms = int(delivery_timeout_s * 1000)
        self._producer = Producer(
            settings,
            delivery_timeout_ms=max(delivery_ms, settings.request_timeout_ms + settings.producer_linger_ms),
            reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
        )
        self._lock = threading.Lock()
        self._jobs: dict[str, _Published] = {}
        self._garbage: dict[str, _Published] = {}
        self._flavours: dict[str, str] = {}

    def submit(self, kind: str, topic: str, job_id: str, spec: BaseModel, *, large: bool = False) -> None:
        """Publish a job: the spec as the data, the job id as `ce_id`, subject and key; `large` marks its result."""
        key, value, headers = Envelope.of(spec, source=SOURCE, id=job_id, subject=job_id, key=job_id).to_kafka()
        record = _Published(kind, topic, key, value, headers, time.time(), large=large)
        with self._lock:
            self._jobs[job_id] = record
        self._send(record)

    def duplicate(self, job_id: str) -> bool:
        """Publish a job again, byte for byte (same `ce_id`); False if the job was never submitted."""
        with self._lock:
            record = self._jobs.get(job_id)
        if record is None:
            return False
        self._send(record)
        return True

    def garbage(self, kind: str, topic: str, key: str, flavour: GarbageFlavour, ce_type: str, seed: int) -> None:
        """Publish one garbage message keyed `key` onto `topic`."""
        value, headers = garbage_message(flavour, key, ce_type, seed, datetime.now(UTC).isoformat())
        record = _Published(kind, topic, key.encode(), value, headers, time.time())
        with self._lock:
            self._garbage[key] = record
            self._flavours[key] = flavour
        self._send(record)

    def _send(self, record: _Published) -> None:
        with self._lock:
            record.publishes += 1
        try:
            future = self._producer.send_raw(record.topic, record.key, record.value, record.headers)
        except KafkaError as exc:
            self._failed(record, exc)
            return
        future.add_callback(lambda _meta: self._acked(record))
        future.add_errback(lambda exc: self._failed(record, exc))

    def _acked(self, record: _Published) -> None:
        with self._lock:
            record.acks += 1

    def _failed(self, record: _Published, exc: BaseException) -> None:
        with self._lock:
            record.errors.append(f"{type(exc).__name__}: {exc}")

    def flush(self, timeout_s: float) -> None:
        """Wait until every publish is acknowledged or has failed."""
        with contextlib.suppress(KafkaError):
            self._producer.flush(timeout_s)

    def pending(self) -> int:
        """Publishes neither acknowledged nor failed yet."""
        with self._lock:
            return sum(r.publishes - r.acks - len(r.errors) for r in (*self._jobs.values(), *self._garbage.values()))

    def sent_jobs(self) -> list[SentJob]:
        """Every job published, for the audit."""
        with self._lock:
            return [
                SentJob(
                    job_id=job_id,
                    kind=r.kind,
                    submitted_at=r.submitted_at,
                    accepted=r.acks > 0,
                    publishes=r.publishes,
                    error=r.errors[-1] if r.errors and not r.acks else None,
                    large=r.large,
                )
                for job_id, r in self._jobs.items()
            ]

    def sent_garbage(self) -> list[GarbageSent]:
        """Every garbage message published, for the audit."""
        with self._lock:
            return [
                GarbageSent(key, r.kind, self._flavours[key], r.topic, accepted=r.acks > 0)
                for key, r in self._garbage.items()
            ]

    def accepted_jobs(self) -> set[str]:
        """Ids of the jobs the broker acknowledged."""
        with self._lock:
            return {job_id for job_id, r in self._jobs.items() if r.acks}

    def accepted_garbage(self) -> set[str]:
        """Keys of the garbage the broker acknowledged."""
        with self._lock:
            return {key for key, r in self._garbage.items() if r.acks}

    def close(self) -> None:
        """Flush and close the producer."""
        with contextlib.suppress(Exception):
            self._producer.close(timeout_s=10)


# ---- collecting --------------------------------------------------------------------------------------


def _outcome(ce_type: str) -> str:
    # quartet.training.TrainingCompleted.v1 -> completed
    name = ce_type.rsplit(".", 2)[-2] if ce_type.count(".") >= 2 else ce_type
    for outcome in ("Completed", "Failed", "Cancelled"):
        if name.endswith(outcome):
            return outcome.lower()
    return "unknown"


def _detail(data: Mapping[str, Any]) -> str | None:
    for key in ("error", "detail", "message"):
        if data.get(key):
            return str(data[key])[:500]
    return None


class Collector:
    """Reads results, dead-letter and event topics (read_committed) on a thread from where they ended at start."""

    def __init__(
        self,
        settings: KernelSettings,
        results: Mapping[str, str],
        dead_letters: Iterable[str],
        events: Iterable[str] = (),
    ) -> None:
        self._settings = settings
        self._results = dict(results)
        self._dlqs = set(dead_letters)
        self._events = set(events)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._positions: dict[TopicPartition, int] = {}
        self.results: list[ResultSeen] = []
        self.dead_letters: list[DeadLetterSeen] = []
        self.corrupt: list[CorruptRecord] = []
        self.events: list[EventSeen] = []
        self._result_ids: dict[str, int] = {}
        self._dlq_keys: set[str] = set()
        self.errors = 0

    @property
    def topics(self) -> list[str]:
        """Every topic the collector reads."""
        return sorted({*self._results, *self._dlqs, *self._events})

    def _consumer(self) -> KafkaConsumer:
        return kafka_consumer(
            self._settings, client_id=f"{self._settings.service_name}-audit", request_timeout_ms=30_000
        )

    def begin(self, timeout_s: float = 30.0) -> None:
        """Find every partition and its current end; call before the first publish."""
        consumer = self._consumer()
        try:
            partitions = wait_for_partitions(consumer, self.topics, timeout_s)
            ends = consumer.end_offsets(partitions)
        finally:
            consumer.close()
        self._positions = {tp: int(ends[tp]) for tp in partitions}
        self._thread = threading.Thread(target=self._run, name="sim-audit", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop reading."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)

    def _run(self) -> None:
        while not self._stop.is_set():
            consumer = self._consumer()
            try:
                consumer.assign(list(self._positions))
                for tp, offset in self._positions.items():
                    consumer.seek(tp, offset)
                while not self._stop.is_set():
                    for tp, records in consumer.poll(timeout_ms=200).items():
                        for rec in records:
                            self._take(rec)
                            self._positions[tp] = rec.offset + 1
                    # Transaction markers and aborted records move the position without yielding records.
                    for tp in self._positions:
                        with contextlib.suppress(Exception):
                            self._positions[tp] = max(self._positions[tp], int(consumer.position(tp)))
            except Exception:
                self.errors += 1
                log.warning("audit consumer failed; reconnecting", exc_info=True)
                time.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    consumer.close()

    def _take(self, rec: Any) -> None:
        at = rec.timestamp / 1000.0 if rec.timestamp and rec.timestamp > 0 else time.time()
        topic = rec.topic
        if topic in self._dlqs:
            h = header_map(rec.headers)
            seen = DeadLetterSeen(
                key=rec.key.decode("utf-8", "replace") if rec.key is not None else None,
                topic=topic,
                original_topic=h.get("dlq_original_topic", b"").decode() or None,
                error_type=h.get("dlq_error_type", b"").decode() or None,
                ce_id=h["ce_id"].decode("utf-8", "replace") if h.get("ce_id") else None,
                at=at,
            )
            with self._lock:
                self.dead_letters.append(seen)
                if seen.key is not None:
                    self._dlq_keys.add(seen.key)
            return
        try:
            env = decode(rec.key, rec.value, rec.headers)
            when = env.time.timestamp()
        except EnvelopeError as exc:
            with self._lock:
                self.corrupt.append(CorruptRecord(topic, rec.partition, rec.offset, str(exc)))
            return
        if topic in self._results:
            job_id = env.subject or str(env.data.get("job_id") or "")
            result = ResultSeen(
                job_id=job_id,
                kind=self._results[topic],
                outcome=_outcome(env.type),
                at=at,
                topic=topic,
                partition=rec.partition,
                offset=rec.offset,
                cached=bool(env.data.get("cached", False)),
                detail=_detail(env.data),
                time=when,
            )
            with self._lock:
                self.results.append(result)
                self._result_ids[job_id] = self._result_ids.get(job_id, 0) + 1
        else:
            event = EventSeen(
                topic, rec.partition, rec.offset, env.id, env.type, env.subject, env.key, env.data, at=at, time=when
            )
            with self._lock:
                self.events.append(event)

    def has_results(self, job_ids: Iterable[str]) -> tuple[int, int]:
        """(how many of `job_ids` have a result, how many ids were asked about)."""
        ids = list(job_ids)
        with self._lock:
            return sum(1 for j in ids if j in self._result_ids), len(ids)

    def has_dead_letters(self, keys: Iterable[str]) -> tuple[int, int]:
        """(how many of `keys` are in a dead-letter topic, how many keys were asked about)."""
        wanted = list(keys)
        with self._lock:
            return sum(1 for k in wanted if k in self._dlq_keys), len(wanted)

    def caught_up(self, timeout_s: float = 10.0) -> bool:
        """True once the collector has read up to the current committed end of every partition."""
        consumer = self._consumer()
        try:
            ends = consumer.end_offsets(list(self._positions))
        except KafkaError:
            return False
        finally:
            consumer.close()
        return all(self._positions.get(tp, 0) >= int(end) for tp, end in ends.items())

    def snapshot(self) -> tuple[list[ResultSeen], list[DeadLetterSeen], list[CorruptRecord], list[EventSeen]]:
        """Copies of everything collected so far."""
        with self._lock:
            return list(self.results), list(self.dead_letters), list(self.corrupt), list(self.events)

    def drain(self) -> tuple[list[ResultSeen], list[DeadLetterSeen], list[EventSeen]]:
        """Hand over what was read since the last drain and forget it, for a reader that keeps its own bounded
        tally (the console, which runs for days); `has_results` and `has_dead_letters` then know only the rest."""
        with self._lock:
            taken = self.results, self.dead_letters, self.events
            self.results, self.dead_letters, self.events, self.corrupt = [], [], [], []
            self._result_ids.clear()
            self._dlq_keys.clear()
        return taken


# ---- lag ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LagSample:
    """A consumer group's total lag on its topics at a moment (None when the broker did not answer)."""

    at: float
    group: str
    lag: int | None


class LagSampler:
    """Samples each worker group's lag (end offset minus committed offset, summed) on a thread."""

    def __init__(
        self,
        settings: KernelSettings,
        groups: Mapping[str, list[str]],
        interval_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._groups = dict(groups)
        self._interval = interval_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.samples: list[LagSample] = []
        self._admin: KafkaAdminClient | None = None
        self._reader: KafkaConsumer | None = None

    def start(self) -> None:
        """Sample until stopped."""
        self._thread = threading.Thread(target=self._run, name="sim-lag", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and close the clients."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)
        self._close()

    def _close(self) -> None:
        for client in (self._admin, self._reader):
            with contextlib.suppress(Exception):
                if client is not None:
                    client.close()
        self._admin = self._reader = None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            for group in self._groups:
                lag = self.lag(group)
                with self._lock:
                    self.samples.append(LagSample(self._clock(), group, lag))
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - started)))

    def lag(self, group: str) -> int | None:
        """The group's lag now: records on its topics not yet committed (None if the broker does not answer)."""
        found = self.positions(group)
        if found is None:
            return None
        return sum(max(0, end - done) for done, end in found.values())

    def positions(self, group: str) -> dict[TopicPartition, tuple[int, int]] | None:
        """Per partition of the group's topics: (committed offset, end offset); None if the broker does not answer."""
        try:
            if self._admin is None:
                self._admin = kafka_admin(
                    self._settings, client_id=f"{self._settings.service_name}-lag", request_timeout_ms=5000
                )
            if self._reader is None:
                self._reader = kafka_consumer(self._settings, request_timeout_ms=5000)
            partitions = wait_for_partitions(self._reader, self._groups[group], 5.0)
            committed = self._admin.list_group_offsets({group: partitions}).get(group, {})
            ends = self._reader.end_offsets(partitions)
            starts = self._reader.beginning_offsets(partitions)
        except Exception:
            self._close()
            return None
        out: dict[TopicPartition, tuple[int, int]] = {}
        for tp in partitions:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
            out[tp] = (int(done), int(ends[tp]))
        return out

    def describe(self, group: str) -> str:
        """The group's state and members with their assignments, for diagnosing a lag that will not clear."""
        try:
            if self._admin is None:
                return "no admin client"
            info = self._admin.describe_groups([group]).get(group, {})
        except Exception as exc:
            return f"cannot describe: {type(exc).__name__}: {exc}"
        members = [
            f"{m.get('client_id')}@{m.get('client_host')} {m.get('member_assignment') or m.get('assignment')}"
            for m in info.get("members") or []
        ]
        return f"state {info.get('group_state') or info.get('state')}, members [{'; '.join(members)}]"

    def snapshot(self) -> list[LagSample]:
        """Every sample so far."""
        with self._lock:
            return list(self.samples)


def group_members(settings: KernelSettings, groups: Iterable[str]) -> dict[str, int]:
    """How many live members each consumer group has (0 for an unknown or empty group)."""
    admin = kafka_admin(settings, client_id="simulator-preflight", request_timeout_ms=10_000)
    try:
        wanted = list(groups)
        out = dict.fromkeys(wanted, 0)
        for group, info in admin.describe_groups(wanted).items():
            out[group] = len(info.get("members") or [])
        return out
    finally:
        admin.close()


def ids_between(settings: KernelSettings, spans: Mapping[TopicPartition, tuple[int, int]]) -> list[str]:
    """The `ce_id`s (or keys) of the records in each [start, end) span, for diagnosing a stuck lag."""
    reader = kafka_consumer(settings, isolation_level="read_uncommitted")
    out: list[str] = []
    try:
        reader.assign(list(spans))
        for tp, (start, _end) in spans.items():
            reader.seek(tp, start)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(reader.position(tp) < end for tp, (_s, end) in spans.items()):
            for tp, records in reader.poll(timeout_ms=500).items():
                for rec in records:
                    if rec.offset < spans[tp][1]:
                        h = header_map(rec.headers)
                        key = rec.key.decode("utf-8", "replace") if rec.key is not None else ""
                        out.append(h["ce_id"].decode("utf-8", "replace") if h.get("ce_id") else key)
    finally:
        reader.close()
    return out


@dataclass(frozen=True)
class RunClients:
    """A run's Kafka clients: the publisher of its load, the collector of what came out, the lag sampler, and
    the prober writing aborted transactions."""

    publisher: Publisher
    collector: Collector
    lag: LagSampler
    probes: AbortedProbes

    def close(self) -> None:
        """Stop probing, sampling and collecting, and close the publisher."""
        self.probes.stop()
        self.lag.stop()
        self.collector.stop()
        self.publisher.close()
