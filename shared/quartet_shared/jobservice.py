"""The job-service layer every job service shares: the job API, the status projector and the worker.

A service describes its kind of job once (a `JobKind` subclass: topics, message models, event builders, spec
hash, admission check) and passes a domain callable `run(job_id, spec, on_progress, should_stop) -> JobOutcome`.

* The API (`job_router`) records a queued job, publishes the spec with `ce_id` = job id through an
  acks=all confirmed send and only then answers 202.
* The projector (`Projector`) reads the progress and results topics into the `JobStore`; the results
  topic is the source of truth and the store a monotonic projection of it, so redelivery is harmless. Past
  the queued row the API creates (and the cancel of a job no worker has taken yet), it is the table's only writer.
* The worker (`JobWorker`) consumes the jobs topic in transactional mode, one job per transaction, and
  emits exactly one outcome event inside it: completed (possibly from the results cache, marked cached),
  failed (bad input, never retried) or cancelled. Progress goes out at once on a separate idempotent
  producer, throttled. It reads the job store (a cancel it missed) but never writes it.

A completed result is converted three times between the handler and `GET /jobs/{id}/result`:

1. worker: the completed event → a Kafka record (`Envelope.of` dumps it once; its large parts, if any, go to
   the artifact store first and the event carries their `ResultRef`);
2. projector: the Kafka record → the `jobs.result` JSON column (the runner validates it as the kind's
   completed model, `JobStore.complete` dumps it once);
3. `GET`: the column → the kind's completed model (large parts merged back), which the route's
   `response_model` serializes. The status cache in Redis never holds the result.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Generic

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from kafka import KafkaConsumer, TopicPartition
from pydantic import BaseModel
from quartet_contracts.envelope import Envelope, EnvelopeError, EventTooLarge, decode
from quartet_contracts.schemas.claimcheck import PARTS_ARTIFACT, ResultRef, merge_parts

from quartet_shared.artifacts import ArtifactPort, ResultCachePort
from quartet_shared.auth import JOBS_READ, JOBS_WRITE, require_scope
from quartet_shared.cache import ResilientRedis
from quartet_shared.clients import KAFKA, KafkaClients, kafka_consumer, wait_for_partitions
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
from quartet_shared.jobkind import (
    AnyJobKind,
    CompletedT,
    JobKind,
    JobOutcome,
    JobRejected,
    JobTopics,
    OnProgress,
    Progress,
    RunJob,
    ShouldStop,
    SpecT,
    failure_of,
    problem_of,
)
from quartet_shared.jobs import JobNotFound, JobPublic, JobRecord, JobStatus, JobStorePort, job_id_for_key
from quartet_shared.metrics import JOB_OUTCOMES
from quartet_shared.producer import EventProducer, Producer
from quartet_shared.settings import KernelSettings

log = logging.getLogger(__name__)

CANCEL_LOOKBACK_S = 24 * 3600


# ---- the API -----------------------------------------------------------------------------------------


@dataclass
class JobApi(Generic[CompletedT]):
    """The ports the job API uses: the status store, the confirmed producer and the artifacts."""

    kind: JobKind[Any, Any, CompletedT, Any]
    store: JobStorePort
    producer: EventProducer
    artifacts: ArtifactPort
    publish_timeout_s: float = 10.0

    def submit(self, spec: BaseModel, idempotency_key: str | None) -> tuple[JobRecord, bool]:
        """Record and publish a job; returns it and whether it is new. Raises Problem 422 for a spec this service
        refuses (the same problem a worker's refusal gives), 503 if Kafka says no."""
        job_id = job_id_for_key(idempotency_key) if idempotency_key else str(uuid.uuid4())
        try:
            self.kind.check_spec(spec)
        except JobRejected as exc:
            raise problem_of(self.kind.problem(self.kind.failed_event(job_id, exc))) from exc
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
            cancelled = self.store.cancel(job_id)
            if cancelled.status is JobStatus.CANCELLED:
                JOB_OUTCOMES.labels(self.kind.name, cancelled.status.value).inc()
            return cancelled
        return record

    def result(self, record: JobRecord) -> CompletedT:
        """A succeeded job's whole result: the summary its event carried with the stored large parts put back."""
        summary = self.store.result(record.id)
        if summary is None:
            raise _conflict(record, "has no result and no plots: only a succeeded job has them")
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


def get_job_api(request: Request) -> JobApi[Any]:
    """The app's JobApi (set by the service's bootstrap as `app.state.job_api`)."""
    api: JobApi[Any] = request.app.state.job_api
    return api


JobApiDep = Annotated[JobApi[Any], Depends(get_job_api)]


def _conflict(record: JobRecord, what: str) -> Problem:
    return Problem(
        409, "Conflict", f"job {record.id} is {record.status.value}: it {what}", job_status=record.status.value
    )


def _require(api: JobApi[Any], job_id: str) -> JobRecord:
    record = api.store.get(job_id)
    if record is None or record.kind != api.kind.name:
        raise Problem(404, "Not Found", f"no job {job_id}")
    return record


def _require_succeeded(api: JobApi[Any], job_id: str) -> JobRecord:
    record = _require(api, job_id)
    if record.status is not JobStatus.SUCCEEDED:
        raise _conflict(record, "has no result and no plots: only a succeeded job has them")
    return record


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def job_router(kind: AnyJobKind) -> APIRouter:
    """The contract's job API for `kind`: submit, status, result, plots, cancel and list."""
    router = APIRouter(prefix="/jobs", tags=["jobs"])
    _add_writes(router, kind)
    _add_reads(router, kind)
    return router


def _add_writes(router: APIRouter, kind: AnyJobKind) -> None:
    def submit(
        api: JobApiDep,
        request: Request,
        body: BaseModel,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> JSONResponse:
        """Accept a job: answered only after the broker has acknowledged it."""
        record, _created = api.submit(body, idempotency_key)
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

    @router.delete(
        "/{job_id}",
        status_code=202,
        summary="Cancel a job",
        response_model=JobPublic,
        dependencies=[require_scope(JOBS_WRITE)],
    )
    def cancel(api: JobApiDep, request: Request, job_id: str) -> JobPublic:
        """Cancel: a queued job at once, a running one at its next iteration."""
        _require(api, job_id)
        try:
            record = api.cancel(job_id)
        except JobNotFound as exc:
            raise Problem(404, "Not Found", f"no job {job_id}") from exc
        return record.public(_base(request))


def _add_reads(router: APIRouter, kind: AnyJobKind) -> None:
    # Listing needs a key: it would hand out every job's id, and an id is what opens a job's status and result.
    @router.get(
        "",
        summary=f"Recent {kind.name} jobs",
        response_model=list[JobPublic],
        dependencies=[require_scope(JOBS_READ)],
    )
    def list_jobs(
        api: JobApiDep,
        request: Request,
        status: Annotated[JobStatus | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[JobPublic]:
        """The most recent jobs, newest first."""
        records = api.store.list(kind=kind.name, status=status, limit=limit)
        return [r.public(_base(request)) for r in records]

    @router.get("/{job_id}", summary="A job's status", response_model=JobPublic)
    def get_job(api: JobApiDep, request: Request, job_id: str) -> JobPublic:
        """Status, progress, timestamps and, on failure, the problem."""
        return _require(api, job_id).public(_base(request))

    @router.get("/{job_id}/result", summary="A finished job's result", response_model=kind.completed_model)
    def get_result(api: JobApiDep, job_id: str) -> BaseModel:
        """The whole result once succeeded, large parts included (409 while not)."""
        result: BaseModel = api.result(_require_succeeded(api, job_id))
        return result

    @router.get("/{job_id}/plots/{name}.png", summary="One of a job's figures")
    def get_plot(api: JobApiDep, job_id: str, name: str) -> Response:
        """A PNG figure of a succeeded job (409 while it has not, like its result)."""
        _require_succeeded(api, job_id)
        artifact = api.artifacts.get(job_id, name)
        if artifact is None or not artifact.content_type.startswith("image/"):
            raise Problem(404, "Not Found", f"job {job_id} has no plot {name!r}")
        return Response(artifact.data, media_type=artifact.content_type)


# ---- the projector -----------------------------------------------------------------------------------


class Projector:
    """Applies progress and outcome events to the JobStore; every update is idempotent and monotonic."""

    def __init__(self, kind: AnyJobKind, store: JobStorePort) -> None:
        self.kind = kind
        self.store = store

    def _ensure(self, job_id: str) -> JobRecord:
        # A job published straight to Kafka has no row yet; its events still deserve one.
        record = self.store.get(job_id)
        if record is None:
            record, _ = self.store.create(job_id, self.kind.name, {})
        return record

    def handle(self, message: BaseModel, ctx: Context) -> None:
        """Project one event about a job (its id is the event's subject, as the worker and API set it)."""
        job_id = ctx.envelope.subject
        if not job_id:
            raise PermanentError("event names no job (no ce_subject)")
        kind = self.kind
        if not isinstance(
            message, kind.progress_model | kind.completed_model | kind.failed_model | kind.cancelled_model
        ):
            raise PermanentError(f"{ctx.envelope.type} is not an event of {kind.name} jobs")
        before = self._ensure(job_id)
        if isinstance(message, kind.progress_model):
            self.store.mark_running(job_id)
            fraction = kind.progress_fraction(message)
            if fraction > 0:
                self.store.update_progress(job_id, fraction)
            return
        if isinstance(message, kind.completed_model):
            after = self.store.complete(job_id, message.model_dump(mode="json"), cached=kind.is_cached(message))
        elif isinstance(message, kind.failed_model):
            after = self.store.fail(job_id, kind.problem(message))
        else:
            after = self.store.cancel(job_id)
        # Counted when this event finished the job: a redelivered outcome, or a late one after a cancel, is not.
        if not before.finished and after.finished:
            JOB_OUTCOMES.labels(kind.name, after.status.value).inc()


def make_projector(
    kind: AnyJobKind,
    settings: KernelSettings,
    store: JobStorePort,
    redis: ResilientRedis | None = None,
    *,
    clients: KafkaClients = KAFKA,
) -> ConsumerRunner:
    """An at-least-once runner projecting the progress and results topics into `store`."""
    projector = Projector(kind, store)
    subs: list[Subscription[Any]] = [
        Subscription(kind.topics.progress, projector.handle),
        Subscription(kind.topics.results, projector.handle),
    ]
    return ConsumerRunner(
        settings,
        f"{kind.topics.results}-projector",
        subs,
        mode=Mode.AT_LEAST_ONCE,
        source=kind.source,
        redis=redis,
        clients=clients,
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
    """What a worker writes to (figures, results by spec hash) and the status store it only reads (a cancel)."""

    artifacts: ArtifactPort
    results: ResultCachePort
    store: JobStorePort | None = None


class JobWorker(Generic[SpecT, CompletedT]):
    """Runs jobs of one kind from its jobs topic, one Kafka transaction per job."""

    def __init__(
        self,
        kind: JobKind[SpecT, Any, CompletedT, Any],
        settings: KernelSettings,
        run: RunJob[SpecT, CompletedT],
        ports: WorkerPorts,
        *,
        redis: ResilientRedis | None = None,
        progress_interval_s: float = 0.25,
        job_timeout_s: float = 900.0,
        cancel_listener: CancelListener | None = None,
        runner_class: Callable[..., ConsumerRunner] = ConsumerRunner,
        progress: EventProducer | None = None,
    ) -> None:
        self.kind = kind
        self.settings = settings
        self._run = run
        self.ports = ports
        self._interval = progress_interval_s
        self.cancels = cancel_listener or CancelListener(settings, kind.topics.control)
        # A producer handed in stays its owner's to close; the worker's own one lives from start to stop.
        self._progress: EventProducer | None = progress
        self._owns_progress = progress is None
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
        if self._progress is None and self._owns_progress:
            self._progress = Producer(self.settings)
        self.cancels.start()

    def _shut(self) -> None:
        self.cancels.stop()
        if self._progress is not None and self._owns_progress:
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

    def handle(self, spec: SpecT, ctx: Context) -> None:
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
        # The job's first progress event marks it running: the projector, not the worker, writes its status.
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

    def _claim_check(self, job_id: str, completed: CompletedT) -> CompletedT:
        """The event to emit: its large parts stored durably under the job first, the event naming them."""
        summary, parts = self.kind.split_result(completed.model_dump(mode="json"))
        if not parts:
            return completed
        # An upsert keyed by job id and name: a re-run after a crash replaces the parts, never adds a second copy.
        ref = self.ports.artifacts.put_parts(job_id, parts)
        return self.kind.completed_model.model_validate({**summary, "result_ref": ref.model_dump(mode="json")})

    def _fail(self, emit: Emit, job_id: str, error: BaseException) -> None:
        """The one way a job ends in failure: its error read by `failure_of`, the kind's failed event emitted."""
        event = self.kind.failed_event(job_id, failure_of(error))
        emit(self.kind.topics.results, Envelope.of(event, source=self.kind.source, subject=job_id, key=job_id))

    def give_up(self, letter: DeadLetter, emit: Emit) -> None:
        """A job the runner dead-letters still gets its one outcome, committed with the dead letter: failed,
        with a problem naming why (so a job is never left queued or running for ever)."""
        job_id = letter.event_id
        if job_id is None:
            # Nothing readable names the job: the dead letter alone records it, and the API never published it.
            log.error("a job record without a readable ce_id was dead-lettered", extra={"error": repr(letter.error)})
            return
        self._fail(emit, job_id, letter.error)

    def _execute(self, job_id: str, spec: SpecT, ctx: Context) -> JobOutcome[CompletedT] | None:
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
        except Aborted:
            raise
        except Exception as exc:
            retry = not isinstance(exc, JobRejected) and (
                ctx.attempt < self.settings.max_attempts or ctx.stopping.is_set()
            )
            if retry:
                raise
            if not isinstance(exc, JobRejected):
                # Out of retries: the job still gets its one outcome rather than a dead letter alone.
                log.exception("job failed on its last attempt", extra={"job_id": job_id})
            self._fail(ctx.emit, job_id, exc)
            return None

    def _from_cache(self, job_id: str, origin: str, result: Mapping[str, Any]) -> CompletedT | None:
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
    "OnProgress",
    "Progress",
    "Projector",
    "RunJob",
    "ShouldStop",
    "WorkerPorts",
    "get_job_api",
    "job_router",
    "make_projector",
]
