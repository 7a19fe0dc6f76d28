"""The sweep over every way a job worker gives up on a job, shared by the tests of both job services.

Each path is forced for one job; the sweep then asserts that every job reaches `failed` with a problem naming
why, that exactly one result event (the failed one) was committed for it, and that its input is in the DLQ.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from quartet_contracts.envelope import Envelope
from quartet_contracts.registry import ce_type_of
from quartet_shared.artifacts import ArtifactStore
from quartet_shared.dlq import list_dead_letters, replay_dead_letters
from quartet_shared.jobapp import JobService
from quartet_shared.jobs import job_id_for_key
from quartet_shared.jobservice import JobWorker
from quartet_shared.producer import Producer
from sqlalchemy import Engine

from tests.support.effects import wait_until
from tests.support.jobs import results_for, wait_status

# Over a failed event (a few hundred bytes, its reason cut short) and under any completed one.
SMALL_EVENT_BYTES = 1024
SMALL_RECORD_BYTES = "1100"


class FailingArtifacts(ArtifactStore):
    """The real artifact store, except that it refuses every file of the job ids in `failing`."""

    def __init__(self, engine: Engine, failing: set[str]) -> None:
        super().__init__(engine, create_tables=False)
        self.failing = failing

    def put(self, job_id: str, name: str, data: bytes, content_type: str = "image/png") -> None:
        """Store one artifact, or raise for a failing job as a database that refuses the write would."""
        if job_id in self.failing:
            raise RuntimeError(f"the artifact store refused {name!r} of job {job_id}")
        super().put(job_id, name, data, content_type)


@dataclass(frozen=True)
class Forced:
    """A job whose worker was made to give up on it, and the words its problem must contain."""

    path: str
    job_id: str
    words: str


def _worker(service: JobService[Any], failing: frozenset[str] = frozenset(), **settings: Any) -> JobWorker:
    """A worker of `service` with `settings` changed, whose artifact store refuses the jobs in `failing`."""
    wired = dataclasses.replace(
        service,
        settings=service.settings.model_copy(update=settings),
        artifacts=FailingArtifacts(service.engine, set(failing)),
    )
    worker = wired.worker()
    worker.start()
    assert worker.runner.started.wait(60), "the worker did not start"
    return worker


def _submit(client: TestClient, spec: Mapping[str, Any], key: str) -> str:
    answer = client.post("/jobs", json=dict(spec), headers={"Idempotency-Key": key})
    assert answer.status_code == 202, answer.text
    job_id = str(answer.json()["id"])
    assert job_id == job_id_for_key(key)
    return job_id


def _publish_broken(service: JobService[Any], over_budget: Mapping[str, Any], unique: str) -> list[Forced]:
    """Straight onto the jobs topic: an undecodable record, a schema mismatch and a spec over the service's limit."""
    topic, spec_type = service.kind.topics.jobs, ce_type_of(service.kind.spec_model)
    undecodable, mismatch = f"undecodable-{unique}", f"mismatch-{unique}"
    producer = Producer(service.settings)
    try:
        producer.send_raw(topic, undecodable.encode(), b"{not json", [("ce_id", undecodable.encode())])
        producer.send(topic, Envelope(type=spec_type, source="/tests", data={"bogus": 1}, id=mismatch, key=mismatch))
        over = Envelope(type=spec_type, source="/tests", data=dict(over_budget), key=f"over-{unique}")
        producer.send(topic, over)
        producer.flush(timeout_s=30)
    finally:
        producer.close()
    return [
        Forced("undecodable", undecodable, "EnvelopeError"),
        Forced("schema mismatch", mismatch, "SchemaError"),
        Forced("permanent error", over.id, ""),
    ]


def sweep_dead_letter_paths(
    service: JobService[Any],
    client: TestClient,
    valid: Mapping[str, Any],
    over_budget: tuple[Mapping[str, Any], str],
    unique: str,
) -> list[Forced]:
    """Force every dead-letter path of the service's worker, each for one job, and check each job's end.

    `client` serves the service's API and projector without a worker; `valid` is a small job that succeeds,
    `over_budget` a spec over the service's limit and the words its rejection says.
    """
    retried = job_id_for_key(f"retried-{unique}")
    first = _worker(
        service, frozenset({retried}), max_event_bytes=SMALL_EVENT_BYTES, max_attempts=2, max_inline_attempts=1
    )
    try:
        forced = _publish_broken(service, over_budget[0], unique)
        forced[-1] = dataclasses.replace(forced[-1], words=over_budget[1])
        forced.append(Forced("exhausted retries", _submit(client, valid, f"retried-{unique}"), "RuntimeError"))
        forced.append(Forced("over the event bound", _submit(client, valid, f"big-{unique}"), "EventTooLarge"))
        _check(service, client, forced)
    finally:
        first.stop(20)
    _shrink_results_topic(service)
    second = _worker(service)
    try:
        refused = Forced("refused by the broker", _submit(client, valid, f"refused-{unique}"), "MessageSizeTooLarge")
        _check(service, client, [refused])
        forced.append(refused)
        # A job already answered for stays answered: replaying its dead letter gives it no second outcome.
        assert replay_dead_letters(service.settings, service.kind.topics.jobs) == len(forced)
        wait_until(lambda: _consumed_all(second), 120, "the worker to consume the replayed jobs")
        for job in forced:
            outcomes = results_for(service.settings, service.kind.topics, job.job_id)
            assert outcomes == [ce_type_of(service.kind.failed_model)], (job.path, "after a replay", outcomes)
    finally:
        second.stop(20)
    return forced


def _consumed_all(worker: JobWorker) -> bool:
    """Whether the worker's group has committed offsets at the end of every partition of its jobs topic."""
    settings, topic = worker.settings, worker.kind.topics.jobs
    probe = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=worker.runner.group, enable_auto_commit=False
    )
    try:
        parts = [TopicPartition(topic, p) for p in sorted(probe.partitions_for_topic(topic) or [])]
        ends = probe.end_offsets(parts)
        return bool(parts) and all((probe.committed(tp) or 0) >= ends[tp] for tp in parts)
    finally:
        probe.close()


def _shrink_results_topic(service: JobService[Any]) -> None:
    """Make the broker refuse any completed event on the results topic while still taking a failed one."""
    admin = KafkaAdminClient(bootstrap_servers=service.settings.kafka_bootstrap_servers)
    try:
        resource = ConfigResource(
            ConfigResourceType.TOPIC, service.kind.topics.results, configs={"max.message.bytes": SMALL_RECORD_BYTES}
        )
        admin.alter_configs([resource])
    finally:
        admin.close()


def _check(service: JobService[Any], client: TestClient, forced: list[Forced]) -> None:
    """Each job failed with its words in the problem, has exactly one (failed) result and a dead letter."""
    failed_type = ce_type_of(service.kind.failed_model)
    for job in forced:
        body = wait_status(client, job.job_id, "failed", 180)
        detail = str((body.get("problem") or {}).get("detail", ""))
        assert job.words in detail, (job.path, body)
    letters = {d.ce_id for d in list_dead_letters(service.settings, service.kind.topics.jobs)}
    for job in forced:
        assert job.job_id in letters, f"{job.path}: its input is not in the dead-letter topic"
        outcomes = results_for(service.settings, service.kind.topics, job.job_id)
        assert outcomes == [failed_type], (job.path, outcomes)
