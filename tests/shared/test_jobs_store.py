"""The job-status store on real PostgreSQL and SQLite, with Redis up and with Redis unreachable, and its fake.

The fake runs the same tests as the real store: that is what lets handler tests trust it.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from quartet_shared.cache import ResilientRedis
from quartet_shared.db import make_engine
from quartet_shared.jobs import (
    JobNotFound,
    JobPublic,
    JobRecord,
    JobStatus,
    JobStore,
    JobStorePort,
    job_id_for_key,
)
from quartet_shared.net import free_port
from quartet_shared.settings import KernelSettings
from quartet_shared.testing.fakes import FakeJobStore
from sqlalchemy import Engine

_SERVERS = pytest.mark.integration

BACKENDS = [
    pytest.param(("postgresql", "up"), id="postgresql-redis-up", marks=_SERVERS),
    pytest.param(("postgresql", "down"), id="postgresql-redis-down", marks=_SERVERS),
    pytest.param(("sqlite", "up"), id="sqlite-redis-up", marks=_SERVERS),
    pytest.param(("sqlite", "down"), id="sqlite-redis-down", marks=_SERVERS),
    pytest.param(("sqlite", "none"), id="sqlite-no-redis", marks=_SERVERS),
    pytest.param(("fake", "none"), id="fake"),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    """Which database and which Redis (up, on a closed port, or none) the test runs against."""
    database, mode = request.param
    return str(database), str(mode)


@pytest.fixture
def engine(backend: tuple[str, str], request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on the backend's database."""
    database, _ = backend
    settings: KernelSettings = request.getfixturevalue("settings")
    url = settings.database_url if database == "postgresql" else f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    assert url is not None
    eng = make_engine(url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def resilient(backend: tuple[str, str], request: pytest.FixtureRequest) -> Iterator[ResilientRedis | None]:
    """Redis as the backend says: the real one, one on a closed port, or none."""
    _, mode = backend
    if mode == "none":
        yield None
        return
    settings: KernelSettings = request.getfixturevalue("settings")
    url = settings.redis_url if mode == "up" else f"redis://127.0.0.1:{free_port()}/0"
    client = ResilientRedis(settings.model_copy(update={"redis_url": url}))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def store(backend: tuple[str, str], request: pytest.FixtureRequest) -> JobStore | FakeJobStore:
    """A store over the parametrised database and Redis, or the in-memory fake."""
    if backend[0] == "fake":
        return FakeJobStore()
    return JobStore(request.getfixturevalue("engine"), request.getfixturevalue("resilient"))


def new_id() -> str:
    """A job id no other test uses."""
    return str(uuid.uuid4())


def test_create_is_idempotent(store: JobStorePort) -> None:
    job_id = new_id()
    first, created = store.create(job_id, "training", {"epochs": 3})
    again, created_again = store.create(job_id, "training", {"epochs": 99})
    assert (created, created_again) == (True, False)
    assert again == first
    assert first.status is JobStatus.QUEUED
    assert first.progress == 0.0
    assert first.spec == {"epochs": 3}
    assert first.started_at is None and first.finished_at is None
    assert first.created_at.tzinfo is not None
    assert store.get(job_id) == first
    assert store.get(new_id()) is None


def test_lifecycle_and_terminal_states_are_final(store: JobStorePort) -> None:
    job_id = new_id()
    store.create(job_id, "planning", {"iterations": 10})
    running = store.mark_running(job_id)
    assert running.status is JobStatus.RUNNING
    assert running.started_at is not None
    assert store.update_progress(job_id, 0.4).progress == pytest.approx(0.4)
    done = store.complete(job_id, {"cost": 1.5, "plots": ["path"]}, cached=True)
    assert done.status is JobStatus.SUCCEEDED
    assert done.progress == 1.0
    assert store.result(job_id) == {"cost": 1.5, "plots": ["path"]}
    assert done.cached is True
    assert done.finished_at is not None and done.started_at == running.started_at
    assert done.finished_at >= done.started_at
    # Nothing after completion changes the job: not a late start, progress, failure or cancel.
    assert store.mark_running(job_id) == done
    assert store.update_progress(job_id, 0.9) == done
    assert store.fail(job_id, {"title": "late failure"}) == done
    assert store.cancel(job_id) == done
    assert store.complete(job_id, {"cost": 9.9}) == done
    assert store.get(job_id) == done


def test_progress_is_monotonic_and_duplicates_change_nothing(store: JobStorePort) -> None:
    job_id = new_id()
    store.create(job_id, "training", {})
    first = store.update_progress(job_id, 0.5)
    # A progress event that overtook the "started" one still means the job runs.
    assert first.status is JobStatus.RUNNING
    assert first.started_at is not None
    assert store.update_progress(job_id, 0.5) == first
    assert store.update_progress(job_id, 0.2) == first
    assert store.mark_running(job_id) == first
    assert store.update_progress(job_id, 7.0).progress == 1.0
    assert store.update_progress(job_id, -1.0).progress == 1.0
    assert store.get(job_id) is not None
    assert store.require(job_id).version == first.version + 1


def test_outcome_before_start_and_first_outcome_wins(store: JobStorePort) -> None:
    failed_id, cancelled_id = new_id(), new_id()
    store.create(failed_id, "training", {})
    failed = store.fail(failed_id, {"title": "Diverged", "detail": "loss became NaN at epoch 3", "status": 422})
    assert failed.status is JobStatus.FAILED
    assert failed.problem == {
        "type": "about:blank",
        "title": "Diverged",
        "detail": "loss became NaN at epoch 3",
        "status": 422,
    }
    assert failed.started_at is not None and failed.finished_at is not None
    assert store.complete(failed_id, {"x": 1}).status is JobStatus.FAILED
    assert store.mark_running(failed_id).status is JobStatus.FAILED

    store.create(cancelled_id, "planning", {})
    cancelled = store.cancel(cancelled_id)
    assert cancelled.status is JobStatus.CANCELLED
    assert store.result(cancelled_id) is None and cancelled.problem is None
    assert store.cancel(cancelled_id) == cancelled
    assert store.complete(cancelled_id, {"x": 1}) == cancelled


def test_updates_to_unknown_jobs_raise(store: JobStorePort) -> None:
    job_id = new_id()
    for update in (
        lambda: store.mark_running(job_id),
        lambda: store.update_progress(job_id, 0.1),
        lambda: store.complete(job_id, {}),
        lambda: store.fail(job_id, {}),
        lambda: store.cancel(job_id),
        lambda: store.require(job_id),
    ):
        with pytest.raises(JobNotFound):
            update()


def test_list_filters_by_kind_and_status_newest_first(store: JobStorePort) -> None:
    kind = f"kind-{uuid.uuid4().hex[:8]}"
    ids = [new_id() for _ in range(4)]
    for job_id in ids:
        store.create(job_id, kind, {})
    store.complete(ids[1], {"ok": True})
    store.mark_running(ids[2])
    listed = store.list(kind=kind)
    assert [r.id for r in listed] == list(reversed(ids))
    assert [r.id for r in store.list(kind=kind, status="succeeded")] == [ids[1]]
    assert [r.id for r in store.list(kind=kind, status=JobStatus.QUEUED)] == [ids[3], ids[0]]
    assert len(store.list(kind=kind, limit=2)) == 2
    assert store.list(kind=f"{kind}-none") == []


def test_concurrent_creates_and_outcomes_have_one_winner(store: JobStorePort) -> None:
    job_id = new_id()
    barrier = threading.Barrier(6)
    created: list[bool] = []
    outcomes: list[JobStatus] = []
    lock = threading.Lock()

    def create() -> None:
        barrier.wait()
        _, was_created = store.create(job_id, "training", {})
        with lock:
            created.append(was_created)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(created) == [False] * 5 + [True]

    barrier = threading.Barrier(6)

    def finish(i: int) -> None:
        barrier.wait()
        record = store.complete(job_id, {"winner": i}) if i % 2 else store.fail(job_id, {"title": f"f{i}"})
        with lock:
            outcomes.append(record.status)

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    final = store.require(job_id)
    assert final.finished
    # Every caller saw the same single outcome, and exactly one update was applied.
    assert set(outcomes) == {final.status}
    assert final.version == 2


def test_job_ids_for_idempotency_keys_are_stable() -> None:
    first = job_id_for_key("order-42")
    assert first == job_id_for_key("order-42")
    assert first != job_id_for_key("order-43")
    assert uuid.UUID(first).version == 5
    # Pinned: a change of namespace would silently give old keys new jobs.
    assert first == str(uuid.uuid5(uuid.UUID("6f1c7a52-3b8e-5d1a-9c4e-2a7b0d9e4f13"), "order-42"))


@pytest.mark.integration
@pytest.mark.parametrize("backend", [("sqlite", "up")], indirect=True)
def test_cache_never_goes_back_to_an_older_version(store: JobStore, settings: KernelSettings) -> None:
    job_id = new_id()
    queued, _ = store.create(job_id, "training", {})
    done = store.complete(job_id, {"loss": 0.1})
    raw = redis.Redis.from_url(settings.redis_url)
    key = f"quartet:jobs:{job_id}"
    try:
        cached = JobRecord.from_json(json.loads(raw.get(key) or b"{}"))
        assert cached == done
        # A slow writer holding the queued state must not overwrite the finished one.
        store._remember(queued)
        assert JobRecord.from_json(json.loads(raw.get(key) or b"{}")) == done
        ttl = raw.ttl(key)
        assert ttl > 60
        # A read served from the cache: delete the row's cache and the store repopulates it from SQL.
        raw.delete(key)
        assert store.get(job_id) == done
        assert raw.exists(key)
    finally:
        raw.close()


@pytest.mark.integration
@pytest.mark.parametrize("backend", [("postgresql", "down")], indirect=True)
def test_store_works_while_redis_is_unreachable(store: JobStore, resilient: ResilientRedis | None) -> None:
    assert resilient is not None
    assert not resilient.ping()
    job_id = new_id()
    store.create(job_id, "training", {})
    store.update_progress(job_id, 0.25)
    assert store.require(job_id).progress == pytest.approx(0.25)
    assert store.complete(job_id, {"ok": True}).status is JobStatus.SUCCEEDED
    assert store.get(job_id) is not None


def test_public_view_has_links_and_serialises() -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    record = JobRecord(
        id="abc",
        kind="training",
        status=JobStatus.SUCCEEDED,
        progress=1.0,
        spec={},
        problem=None,
        cached=True,
        version=3,
        created_at=now,
        started_at=now,
        finished_at=now,
        updated_at=now,
    )
    public = record.public("http://localhost:8001/")
    assert public.links == {
        "self": "http://localhost:8001/jobs/abc",
        "cancel": "http://localhost:8001/jobs/abc",
        "result": "http://localhost:8001/jobs/abc/result",
    }
    body = public.model_dump(mode="json")
    assert set(body) == {
        "id",
        "kind",
        "status",
        "progress",
        "created_at",
        "started_at",
        "finished_at",
        "updated_at",
        "problem",
        "cached",
        "links",
    }
    assert body["status"] == "succeeded"
    assert JobPublic.model_validate(body) == public
    assert JobRecord.from_json(record.to_json()) == record
