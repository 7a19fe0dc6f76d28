"""The job-service layer every job service shares: the job API, the status projector and the worker.

A service describes its kind of job once (`JobKind`: topics, spec model, event builders, spec hash,
admission check) and passes a domain callable `run(job_id, spec, on_progress, should_stop) -> JobOutcome`.

* The API (`job_router`) records a queued job, publishes the spec with `ce_id` = job id through an
  acks=all confirmed send and only then answers 202.
* The projector (`make_projector`) reads the progress and results topics into the `JobStore`; the results
  topic is the source of truth and the store a monotonic projection of it, so redelivery is harmless.
* The worker (`JobWorker`) consumes the jobs topic in transactional mode, one job per transaction, and
  emits exactly one outcome event inside it: completed (possibly from the results cache, marked cached),
  failed (bad input, never retried) or cancelled. Progress goes out at once on a separate idempotent
  producer, throttled.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from kafka import KafkaConsumer, TopicPartition
from pydantic import BaseModel
from quartet_contracts.envelope import Envelope, EnvelopeError, EventTooLarge, decode
from quartet_contracts.schemas.claimcheck import PARTS_ARTIFACT, ResultRef, merge_parts
from quartet_contracts.topics import TopicSpec, expand

from quartet_shared.artifacts import ArtifactStore, ResultStore
from quartet_shared.auth import JOBS_READ, JOBS_WRITE, require_scope
from quartet_shared.cache import ResilientRedis
from quartet_shared.clients import kafka_consumer, partition_counts, wait_for_partitions
from quartet_shared.consumer import (
    Aborted,
    ConsumerRunner,
    Context,
    DeadLetter,
    Emit,
    Mode,
    PermanentError,
    Subscription,
)
from quartet_shared.http import Problem
from quartet_shared.jobs import JobNotFound, JobRecord, JobStatus, JobStore, job_id_for_key
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics

log = logging.getLogger(__name__)

CANCEL_LOOKBACK_S = 24 * 3600
# How much of the error that made a worker give up on a job its failed event quotes: enough to say why, small
# enough that the event is never refused as too large itself.
GIVE_UP_REASON_CHARS = 300


class JobRejected(ValueError):
    """The job's input cannot be run; `field` names the culprit (dotted, as in the spec). Never retried."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Progress:
    """Where a running job is: iteration `iteration` of `total`, `fraction` done, best value so far."""

    iteration: int
    total: int
    fraction: float
    best: float | None = None
    label: str | None = None


@dataclass(frozen=True)
class JobOutcome:
    """What a run produced: the completed event (None when cancelled), its figures, and the last progress."""

    completed: BaseModel | None
    plots: Mapping[str, bytes] = field(default_factory=dict)
    cancelled: bool = False
    last: Progress | None = None


OnProgress = Callable[[Progress], None]
ShouldStop = Callable[[], bool]
RunJob = Callable[[str, Any, OnProgress, ShouldStop], JobOutcome]


@dataclass(frozen=True)
class JobTopics:
    """The four topics of a kind of job."""

    jobs: str
    control: str
    progress: str
    results: str

    @classmethod
    def of(cls, kind: str, prefix: str = "") -> JobTopics:
        """`{prefix}{kind}.jobs` and its siblings (a prefix keeps tests apart)."""
        base = f"{prefix}{kind}"
        return cls(f"{base}.jobs", f"{base}.control", f"{base}.progress", f"{base}.results")

    def specs(self) -> list[TopicSpec]:
        """Topic specs, with retry and dead-letter companions for the jobs and results topics."""
        return expand(
            [
                TopicSpec(self.jobs, "jobs to run; key = job id", with_retry_and_dlq=True),
                TopicSpec(self.control, "cancellations; key = job id", partitions=1),
                TopicSpec(self.progress, "progress of running jobs; key = job id"),
                TopicSpec(self.results, "exactly one outcome per job; key = job id", with_retry_and_dlq=True),
            ]
        )


def _no_parts(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return result, {}


def _default_problem(message: BaseModel) -> dict[str, Any]:
    data = message.model_dump(mode="json")
    problem: dict[str, Any] = {"title": "Job failed", "status": 422}
    detail = data.get("error") or data.get("message")
    if detail:
        problem["detail"] = str(detail)
    if data.get("field"):
        problem["field"] = data["field"]
    return problem


@dataclass(frozen=True)
class JobKind:
    """Everything the kernel needs to know about one kind of job; the domain stays in the service."""

    name: str
    topics: JobTopics
    spec_model: type[BaseModel]
    progress_model: type[BaseModel]
    completed_model: type[BaseModel]
    failed_model: type[BaseModel]
    cancelled_model: type[BaseModel]
    spec_hash: Callable[[Any], str]
    progress_event: Callable[[str, Progress], BaseModel]
    failed_event: Callable[[str, JobRejected], BaseModel]
    cancelled_event: Callable[[str, Progress | None], BaseModel]
    cancel_command: Callable[[str], BaseModel]
    check_spec: Callable[[Any], None] = lambda _spec: None
    problem_of: Callable[[BaseModel], dict[str, Any]] = _default_problem
    # Splits a completed result (as JSON) into the bounded summary its event carries and the large parts stored
    # beside the job (the claim-check); the default keeps everything in the event.
    split_result: Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]] = _no_parts

    @property
    def source(self) -> str:
        """The CloudEvents source of this kind's events."""
        return f"/quartet/{self.name}"

    def ensure_topics(self, settings: KernelSettings, wait_s: float = 30.0) -> None:
        """Create the kind's topics if missing and wait until their partitions are known."""
        specs = self.topics.specs()
        ensure_topics(settings, specs)
        # A consumer that subscribes before a new topic's metadata is visible may not see its partitions
        # until its next metadata refresh, minutes later; waiting here keeps the first assignment whole.
        with contextlib.suppress(LookupError):
            partition_counts(settings, [s.name for s in specs], wait_s)


# ---- the API -----------------------------------------------------------------------------------------


@dataclass
class JobApi:
    """The ports the job API uses: the status store, the confirmed producer and the artifacts."""

    kind: JobKind
    store: JobStore
    producer: Producer
    artifacts: ArtifactStore
    publish_timeout_s: float = 10.0

    def submit(self, spec: BaseModel, idempotency_key: str | None) -> tuple[JobRecord, bool]:
        """Record and publish a job; returns it and whether it is new. Raises Problem 503 if Kafka says no."""
        self.kind.check_spec(spec)
        job_id = job_id_for_key(idempotency_key) if idempotency_key else str(uuid.uuid4())
        canonical = spec.model_dump(mode="json")
        record, created = self.store.create(job_id, self.kind.name, canonical)
        if not created:
            # The key names one request (IETF Idempotency-Key draft): the same spec, however spelled, gets its
            # job back; another spec under the same key is the client's mistake, never silently the old job.
            if record.kind != self.kind.name or record.spec != canonical:
                raise Problem(
                    422,
                    "Idempotency-Key reused",
                    f"the Idempotency-Key was first used for job {job_id} with a different request body; "
                    "send that body again to get the job, or use a new key for a new job",
                    errors=[{"field": "Idempotency-Key", "message": "already used with a different request body"}],
                )
            return record, False
        envelope = Envelope.of(spec, source=self.kind.source, id=job_id, subject=job_id, key=job_id)
        try:
            self.producer.send_confirmed(self.kind.topics.jobs, envelope, timeout_s=self.publish_timeout_s)
        except EventTooLarge as exc:
            self.store.discard(job_id)
            raise Problem(413, "Content Too Large", f"the job spec is too large to publish: {exc}") from exc
        except Exception as exc:
            # Not accepted, so not kept: a retry with the same key must be able to publish it afresh.
            self.store.discard(job_id)
            log.warning("job not accepted by the broker", extra={"job_id": job_id, "error": repr(exc)})
            raise Problem(503, "Service Unavailable", "the message broker did not acknowledge the job") from exc
        return record, True

    def cancel(self, job_id: str) -> JobRecord:
        """Ask the workers to stop a job; a queued one is cancelled at once. A finished job is a 409."""
        record = self.store.require(job_id)
        if record.finished:
            raise _conflict(record, "cannot be cancelled")
        command = self.kind.cancel_command(job_id)
        envelope = Envelope.of(command, source=self.kind.source, subject=job_id, key=job_id)
        try:
            self.producer.send_confirmed(self.kind.topics.control, envelope, timeout_s=self.publish_timeout_s)
        except Exception as exc:
            raise Problem(503, "Service Unavailable", "the message broker did not acknowledge the cancel") from exc
        if record.status is JobStatus.QUEUED:
            return self.store.cancel(job_id)
        return record

    def result(self, record: JobRecord) -> BaseModel:
        """A succeeded job's whole result: the summary its event carried with the stored large parts put back."""
        summary = record.result or {}
        raw_ref = summary.get("result_ref")
        if not raw_ref:
            return self.kind.completed_model.model_validate(summary)
        ref = ResultRef.model_validate(raw_ref)
        try:
            parts = self.artifacts.get_parts(record.id, ref)
        except ValueError as exc:
            raise Problem(500, "Result damaged", f"job {record.id}: {exc}") from exc
        if parts is None:
            raise Problem(500, "Result incomplete", f"job {record.id}: its stored {ref.name} is missing")
        return self.kind.completed_model.model_validate(merge_parts(summary, parts))


def get_job_api(request: Request) -> JobApi:
    """The app's JobApi (set by the service's bootstrap as `app.state.job_api`)."""
    api: JobApi = request.app.state.job_api
    return api


JobApiDep = Annotated[JobApi, Depends(get_job_api)]


def _conflict(record: JobRecord, what: str) -> Problem:
    return Problem(
        409, "Conflict", f"job {record.id} is {record.status.value}: it {what}", job_status=record.status.value
    )


def _require(api: JobApi, job_id: str) -> JobRecord:
    record = api.store.get(job_id)
    if record is None or record.kind != api.kind.name:
        raise Problem(404, "Not Found", f"no job {job_id}")
    return record


def _require_succeeded(api: JobApi, job_id: str) -> JobRecord:
    record = _require(api, job_id)
    if record.status is not JobStatus.SUCCEEDED or record.result is None:
        raise _conflict(record, "has no result and no plots: only a succeeded job has them")
    return record


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def job_router(kind: JobKind) -> APIRouter:
    """The contract's job API for `kind`: submit, status, result, plots, cancel and list."""
    router = APIRouter(prefix="/jobs", tags=["jobs"])

    def submit(
        api: JobApiDep,
        request: Request,
        body: BaseModel,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> JSONResponse:
        """Accept a job: answered only after the broker has acknowledged it."""
        try:
            record, _created = api.submit(body, idempotency_key)
        except JobRejected as exc:
            raise Problem(
                422,
                "Invalid request",
                f"invalid fields: {exc.field}",
                errors=[{"field": exc.field or "body", "message": exc.message}],
            ) from exc
        public = record.public(_base(request))
        return JSONResponse(
            {"id": record.id, "status": record.status.value, "links": public.links},
            status_code=202,
            headers={"Location": public.links["self"]},
        )

    # The body is the kind's spec model, known only at run time: FastAPI then validates it (422 naming each
    # field) and documents its schema and examples in OpenAPI, instead of an untyped object.
    submit.__annotations__["body"] = Annotated[kind.spec_model, Body(description="The job spec.")]
    router.post("", status_code=202, summary=f"Submit a {kind.name} job", dependencies=[require_scope(JOBS_WRITE)])(
        submit
    )

    # Listing needs a key: it would hand out every job's id, and an id is what opens a job's status and result.
    @router.get("", summary=f"Recent {kind.name} jobs", dependencies=[require_scope(JOBS_READ)])
    def list_jobs(
        api: JobApiDep,
        request: Request,
        status: Annotated[JobStatus | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[dict[str, Any]]:
        """The most recent jobs, newest first."""
        records = api.store.list(kind=kind.name, status=status, limit=limit)
        return [r.public(_base(request)).model_dump(mode="json") for r in records]

    @router.get("/{job_id}", summary="A job's status")
    def get_job(api: JobApiDep, request: Request, job_id: str) -> dict[str, Any]:
        """Status, progress, timestamps and, on failure, the problem."""
        return _require(api, job_id).public(_base(request)).model_dump(mode="json")

    @router.get("/{job_id}/result", summary="A finished job's result", response_model=kind.completed_model)
    def get_result(api: JobApiDep, job_id: str) -> BaseModel:
        """The whole result once succeeded, large parts included (409 while not)."""
        return api.result(_require_succeeded(api, job_id))

    @router.get("/{job_id}/plots/{name}.png", summary="One of a job's figures")
    def get_plot(api: JobApiDep, job_id: str, name: str) -> Response:
        """A PNG figure of a succeeded job (409 while it has not, like its result)."""
        _require_succeeded(api, job_id)
        artifact = api.artifacts.get(job_id, name)
        if artifact is None or not artifact.content_type.startswith("image/"):
            raise Problem(404, "Not Found", f"job {job_id} has no plot {name!r}")
        return Response(artifact.data, media_type=artifact.content_type)

    @router.delete("/{job_id}", status_code=202, summary="Cancel a job", dependencies=[require_scope(JOBS_WRITE)])
    def cancel(api: JobApiDep, request: Request, job_id: str) -> dict[str, Any]:
        """Cancel: a queued job at once, a running one at its next iteration."""
        _require(api, job_id)
        try:
            record = api.cancel(job_id)
        except JobNotFound as exc:
            raise Problem(404, "Not Found", f"no job {job_id}") from exc
        return record.public(_base(request)).model_dump(mode="json")

    return router


# ---- the projector -----------------------------------------------------------------------------------


class Projector:
    """Applies progress and outcome events to the JobStore; every update is idempotent and monotonic."""

    def __init__(self, kind: JobKind, store: JobStore) -> None:
        self.kind = kind
        self.store = store

    def _ensure(self, job_id: str) -> None:
        # A job published straight to Kafka has no row yet; its events still deserve one.
        if self.store.get(job_id) is None:
            self.store.create(job_id, self.kind.name, {})

    def handle(self, message: BaseModel, ctx: Context) -> None:
        """Project one event about a job."""
        job_id = ctx.envelope.subject or str(getattr(message, "job_id", ""))
        if not job_id:
            raise PermanentError("event names no job (no ce_subject and no job_id)")
        self._ensure(job_id)
        if isinstance(message, self.kind.progress_model):
            self.store.mark_running(job_id)
            fraction = getattr(message, "progress", None)
            if isinstance(fraction, int | float) and fraction > 0:
                self.store.update_progress(job_id, float(fraction))
        elif isinstance(message, self.kind.completed_model):
            data = message.model_dump(mode="json")
            self.store.complete(job_id, data, cached=bool(data.get("cached", False)))
        elif isinstance(message, self.kind.failed_model):
            self.store.fail(job_id, self.kind.problem_of(message))
        elif isinstance(message, self.kind.cancelled_model):
            self.store.cancel(job_id)
        else:
            raise PermanentError(f"{ctx.envelope.type} is not an event of {self.kind.name} jobs")


def make_projector(
    kind: JobKind, settings: KernelSettings, store: JobStore, redis: ResilientRedis | None = None
) -> ConsumerRunner:
    """An at-least-once runner projecting the progress and results topics into `store`."""
    projector = Projector(kind, store)
    subs: list[Subscription[Any]] = [
        Subscription(kind.topics.progress, projector.handle),
        Subscription(kind.topics.results, projector.handle),
    ]
    return ConsumerRunner(
        settings, f"{kind.topics.results}-projector", subs, mode=Mode.AT_LEAST_ONCE, source=kind.source, redis=redis
    )


# ---- the worker --------------------------------------------------------------------------------------


class CancelListener:
    """Follows the control topic from shortly before start-up, remembering every job id asked to cancel."""

    def __init__(self, settings: KernelSettings, topic: str, lookback_s: float = CANCEL_LOOKBACK_S) -> None:
        self._settings = settings
        self._topic = topic
        self._lookback_s = lookback_s
        self._ids: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.ready = threading.Event()
        self._thread: threading.Thread | None = None

    def __contains__(self, job_id: object) -> bool:
        with self._lock:
            return job_id in self._ids

    def start(self) -> None:
        """Follow the topic on a daemon thread."""
        self._thread = threading.Thread(target=self._run, name=f"cancels-{self._topic}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        # No group: every worker process must see every cancel, whichever partition owns the job.
        consumer = kafka_consumer(self._settings)
        try:
            partitions = self._partitions(consumer)
            consumer.assign(partitions)
            since = int((time.time() - self._lookback_s) * 1000)
            found = consumer.offsets_for_times(dict.fromkeys(partitions, since))
            for tp in partitions:
                offset = found.get(tp)
                if offset is not None:
                    consumer.seek(tp, offset.offset)
                else:
                    consumer.seek_to_end(tp)
            self.ready.set()
            while not self._stop.is_set():
                for records in consumer.poll(timeout_ms=200).values():
                    for rec in records:
                        self._note(rec.key, rec.value, rec.headers)
        except Exception:
            log.exception("cancel listener stopped", extra={"topic": self._topic})
        finally:
            consumer.close()

    def _partitions(self, consumer: KafkaConsumer) -> list[TopicPartition]:
        try:
            return wait_for_partitions(consumer, [self._topic], 30.0, stop=self._stop)
        except LookupError:
            return []

    def _note(self, key: bytes | None, value: bytes | None, headers: Any) -> None:
        try:
            env = decode(key, value, headers)
        except EnvelopeError:
            return
        job_id = env.subject or str(env.data.get("job_id") or "")
        if job_id:
            with self._lock:
                self._ids.add(job_id)


class _Throttle:
    """Passes at most one call per interval, plus the final one."""

    def __init__(self, interval_s: float) -> None:
        self._interval = interval_s
        self._last = float("-inf")

    def ready(self, final: bool) -> bool:
        now = time.monotonic()
        if final or now - self._last >= self._interval:
            self._last = now
            return True
        return False


@dataclass
class WorkerPorts:
    """What a worker writes to: figures, results by spec hash, and (optionally) the status store."""

    artifacts: ArtifactStore
    results: ResultStore
    store: JobStore | None = None


class JobWorker:
    """Runs jobs of one kind from its jobs topic, one Kafka transaction per job."""

    def __init__(
        self,
        kind: JobKind,
        settings: KernelSettings,
        run: RunJob,
        ports: WorkerPorts,
        *,
        redis: ResilientRedis | None = None,
        progress_interval_s: float = 0.25,
        job_timeout_s: float = 900.0,
        cancel_listener: CancelListener | None = None,
        runner_class: Callable[..., ConsumerRunner] = ConsumerRunner,
    ) -> None:
        self.kind = kind
        self.settings = settings
        self._run = run
        self.ports = ports
        self._interval = progress_interval_s
        self.cancels = cancel_listener or CancelListener(settings, kind.topics.control)
        self._progress: Producer | None = None
        self.runner = runner_class(
            settings,
            f"{kind.topics.jobs}-worker",
            [Subscription(kind.topics.jobs, self.handle, model=kind.spec_model, on_dead_letter=self.give_up)],
            mode=Mode.TRANSACTIONAL,
            source=kind.source,
            redis=redis,
            max_poll_records=1,
            max_poll_interval_ms=int(job_timeout_s * 1000),
        )

    # ---- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the cancel listener and the runner on their own threads."""
        self._open()
        self.runner.start()

    def run(self) -> None:
        """Run in the calling thread until stopped (SIGTERM when signal handlers are installed)."""
        self._open()
        try:
            self.runner.run()
        finally:
            self._shut()

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop: the current job is aborted and left for another worker; then close everything."""
        self.runner.stop(timeout_s)
        self._shut()

    def _open(self) -> None:
        self.kind.ensure_topics(self.settings)
        if self._progress is None:
            self._progress = Producer(self.settings)
        self.cancels.start()

    def _shut(self) -> None:
        self.cancels.stop()
        if self._progress is not None:
            with contextlib.suppress(Exception):
                self._progress.close(timeout_s=5)
            self._progress = None

    # ---- one job -------------------------------------------------------------------------------------

    def _cancelled(self, job_id: str) -> bool:
        if job_id in self.cancels:
            return True
        store = self.ports.store
        if store is None:
            return False
        record = store.get(job_id)
        return record is not None and record.status is JobStatus.CANCELLED

    def _publish_progress(self, job_id: str, progress: Progress) -> None:
        if self._progress is None:
            return
        event = self.kind.progress_event(job_id, progress)
        with contextlib.suppress(Exception):
            self._progress.send(
                self.kind.topics.progress, Envelope.of(event, source=self.kind.source, subject=job_id, key=job_id)
            )

    def _emit(self, ctx: Context, job_id: str, event: BaseModel) -> None:
        ctx.emit(self.kind.topics.results, Envelope.of(event, source=self.kind.source, subject=job_id, key=job_id))

    def handle(self, spec: BaseModel, ctx: Context) -> None:
        """Run one job and emit its one outcome event inside the runner's transaction."""
        job_id = ctx.envelope.id
        try:
            self.kind.check_spec(spec)
        except JobRejected as exc:
            raise PermanentError(str(exc)) from exc
        if self._cancelled(job_id):
            self._emit(ctx, job_id, self.kind.cancelled_event(job_id, None))
            return
        spec_hash = self.kind.spec_hash(spec)
        hit = self.ports.results.get(spec_hash)
        cached = self._from_cache(job_id, hit.job_id, hit.result) if hit is not None else None
        if cached is not None:
            self._emit(ctx, job_id, self._claim_check(job_id, cached))
            return
        if self.ports.store is not None:
            with contextlib.suppress(Exception):
                self.ports.store.mark_running(job_id)
        outcome = self._execute(job_id, spec, ctx)
        if outcome is None:
            return
        if outcome.cancelled or outcome.completed is None:
            if ctx.stopping.is_set() and not self._cancelled(job_id):
                raise Aborted(f"job {job_id} left for another worker: stopping")
            self._emit(ctx, job_id, self.kind.cancelled_event(job_id, outcome.last))
            return
        self.ports.artifacts.put_all(job_id, outcome.plots)
        completed = self._claim_check(job_id, outcome.completed)
        result = completed.model_dump(mode="json")
        # Only a committed result may be remembered: a cache entry of an aborted transaction would be served to
        # the next job with this spec although the results topic never had it.
        ctx.after_commit(lambda: self.ports.results.put(spec_hash, job_id, result))
        if outcome.last is not None:
            self._publish_progress(job_id, outcome.last)
        self._emit(ctx, job_id, completed)

    def _claim_check(self, job_id: str, completed: BaseModel) -> BaseModel:
        """The event to emit: its large parts stored durably under the job first, the event naming them."""
        summary, parts = self.kind.split_result(completed.model_dump(mode="json"))
        if not parts:
            return completed
        # An upsert keyed by job id and name: a re-run after a crash replaces the parts, never adds a second copy.
        ref = self.ports.artifacts.put_parts(job_id, parts)
        return self.kind.completed_model.model_validate({**summary, "result_ref": ref.model_dump(mode="json")})

    def give_up(self, letter: DeadLetter, emit: Emit) -> None:
        """A job the runner dead-letters still gets its one outcome, committed with the dead letter: failed,
        with a problem naming why (so neither the worker's own `running` mark nor `queued` is left for ever)."""
        job_id = letter.event_id
        if job_id is None:
            # Nothing readable names the job: the dead letter alone records it, and the API never published it.
            log.error("a job record without a readable ce_id was dead-lettered", extra={"error": repr(letter.error)})
            return
        cause = letter.error.__cause__
        if isinstance(cause, JobRejected):
            reason = cause
        else:
            reason = JobRejected(None, f"{type(letter.error).__name__}: {letter.error}"[:GIVE_UP_REASON_CHARS])
        event = self.kind.failed_event(job_id, reason)
        emit(self.kind.topics.results, Envelope.of(event, source=self.kind.source, subject=job_id, key=job_id))

    def _execute(self, job_id: str, spec: BaseModel, ctx: Context) -> JobOutcome | None:
        throttle = _Throttle(self._interval)

        def on_progress(progress: Progress) -> None:
            if throttle.ready(final=progress.fraction >= 1.0):
                self._publish_progress(job_id, progress)

        checked = [time.monotonic()]

        def should_stop() -> bool:
            if ctx.stopping.is_set() or job_id in self.cancels:
                return True
            # The store is a second witness (a cancel the listener missed), asked at most once a second.
            if time.monotonic() - checked[0] < 1.0:
                return False
            checked[0] = time.monotonic()
            return self._cancelled(job_id)

        try:
            return self._run(job_id, spec, on_progress, should_stop)
        except JobRejected as exc:
            self._emit(ctx, job_id, self.kind.failed_event(job_id, exc))
            return None
        except Aborted:
            raise
        except Exception as exc:
            if ctx.attempt < self.settings.max_attempts or ctx.stopping.is_set():
                raise
            # Out of retries: the job still gets its one outcome rather than a dead letter alone.
            log.exception("job failed on its last attempt", extra={"job_id": job_id})
            failure = JobRejected(None, f"{type(exc).__name__}: {exc}")
            self._emit(ctx, job_id, self.kind.failed_event(job_id, failure))
            return None

    def _from_cache(self, job_id: str, origin: str, result: Mapping[str, Any]) -> BaseModel | None:
        """The cached outcome for `job_id`, or None when the figures it names are gone (then it is recomputed)."""
        names = self.ports.artifacts.copy(origin, job_id) if origin != job_id else self.ports.artifacts.names(job_id)
        plots = [name for name in names if name != PARTS_ARTIFACT]
        ref = result.get("result_ref")
        missing = set(result.get("plots") or ()) - set(plots)
        if isinstance(ref, dict) and ref.get("name") not in names:
            missing.add(str(ref.get("name")))
        if missing:
            # A cache entry can outlive the rows it points at (Redis kept, database replaced): a result
            # without its figures is not the result, so the job runs afresh.
            log.warning("cached result lacks its figures", extra={"job_id": job_id, "missing": sorted(missing)})
            return None
        data = {**result, "job_id": job_id, "cached": origin != job_id, "plots": plots}
        return self.kind.completed_model.model_validate(data)


# ---- readiness ---------------------------------------------------------------------------------------


__all__ = [
    "JobApi",
    "JobApiDep",
    "JobKind",
    "JobOutcome",
    "JobRejected",
    "JobTopics",
    "JobWorker",
    "Progress",
    "Projector",
    "WorkerPorts",
    "get_job_api",
    "job_router",
    "make_projector",
]
