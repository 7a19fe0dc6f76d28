"""Fault tests of the job-service layer: a job worker killed at its worst moment, against the real servers."""

from __future__ import annotations

from pathlib import Path

import pytest
from quartet_contracts.envelope import Envelope, decode
from quartet_contracts.schemas.planning import PlanRequested
from quartet_shared.artifacts import ResultStore
from quartet_shared.cache import ResilientRedis
from quartet_shared.db import make_engine
from quartet_shared.jobservice import JobTopics
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings
from quartet_tools.harness.processes import Workers

from tests.support.effects import read_all, records_to_end, wait_until
from tests.support.jobs import committed_events
from tests.support.scripted_jobs import kind_for, spec

pytestmark = [pytest.mark.integration, pytest.mark.fault]

JOB_WORKER = "tests.support.job_worker"
COMPLETED = "quartet.planning.PlanCompleted.v1"


def _uncommitted_results(settings: KernelSettings, topic: str, job_id: str) -> int:
    """Result records about `job_id` on `topic`, aborted or open transactions included (read_uncommitted)."""
    records = records_to_end(settings, [topic], committed=False)
    return sum(1 for r in records if decode(r.key, r.value, r.headers).subject == job_id)


def test_a_worker_killed_between_producing_a_result_and_committing_it_leaves_no_cached_result(
    settings: KernelSettings, workers: Workers, unique: str, tmp_path: Path
) -> None:
    """Redis and the result store never hold a result the results topic does not; the restarted worker runs the
    job afresh and commits exactly one result, which only then is cached."""
    prefix, results_kind = f"f{unique}.", f"fault-{unique}"
    kind = kind_for(JobTopics.of("planning", prefix))
    kind.ensure_topics(settings)
    engine = make_engine(settings.database_url or "")
    redis = ResilientRedis(settings)
    results = ResultStore(engine, results_kind, redis)
    job = PlanRequested.model_validate(spec(seed=3))
    spec_hash = kind.spec_hash(job)
    job_id = f"job-{unique}"
    marker = tmp_path / "in-window"
    common = ["--topic-prefix", prefix, "--results-kind", results_kind]
    try:
        first = workers.start(
            *common, "--pause-before-commit-s", "60", "--marker", str(marker), instance="w1", module=JOB_WORKER
        )
        producer = Producer(settings)
        producer.send_confirmed(kind.topics.jobs, Envelope.of(job, source="/tests", id=job_id, key=job_id))
        producer.close()
        wait_until(marker.exists, 180, "the worker to sit between producing the result and committing it")
        workers.kill9(first)
        assert _uncommitted_results(settings, kind.topics.results, job_id) == 1, "the result was produced"
        # The worker is dead: whatever it wrote is on the topic already.
        assert [e for e in committed_events(settings, kind.topics.results) if e.subject == job_id] == []
        cached = redis.call("get", lambda r: r.get(f"quartet:results:{results_kind}:{spec_hash}"), None)
        assert cached is None, "Redis holds a result the results topic does not"
        assert results.get(spec_hash) is None, "the result store holds a result the results topic does not"

        workers.start(*common, instance="w1", module=JOB_WORKER)

        def mine(events: list[Envelope]) -> list[Envelope]:
            return [e for e in events if e.subject == job_id]

        topic = kind.topics.results
        wait_until(lambda: bool(mine(committed_events(settings, topic))), 180, "the restarted worker's result")
        wait_until(lambda: results.get(spec_hash) is not None, 30, "the committed result to be cached")
        # The last look reads on until the topic has been quiet for 2 s: room for a second result from the live worker.
        (outcome,) = mine(read_all(settings, [topic], idle_ms=2000))
        assert outcome.type == COMPLETED
        assert outcome.data["cached"] is False, "the restarted worker served a result that was never committed"
        kept = results.get(spec_hash)
        assert kept is not None and kept.job_id == job_id
    finally:
        redis.close()
        engine.dispose()
