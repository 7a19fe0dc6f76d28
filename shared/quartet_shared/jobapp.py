"""A job service's wiring, shared by every job service: settings, stores, the HTTP app and the console script.

A service supplies its settings class (a `JobServiceSettings` with its own prefix), its `JobKind` and the
domain callable that runs one job; `JobService.wire` connects them to SQL, Redis and Kafka, `create_job_app`
serves the contract's job API with the projector (and, for `all`, a worker) in the app's lifespan, and
`job_service_main` is the `<service> api|worker|all` console script.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar

from fastapi import FastAPI
from pydantic import Field
from sqlalchemy import Engine

from quartet_shared.artifacts import ArtifactStore, ResultStore
from quartet_shared.auth import ApiKeys
from quartet_shared.cache import ResilientRedis
from quartet_shared.consumer import ConsumerRunner
from quartet_shared.db import default_sqlite_url, make_engine
from quartet_shared.health import database_ready, kafka_ready
from quartet_shared.http import create_app
from quartet_shared.jobkind import AnyJobKind, CompletedT, JobKind, RunJob, SpecT
from quartet_shared.jobs import JobStore
from quartet_shared.jobservice import (
    JobApi,
    JobWorker,
    WorkerPorts,
    job_router,
    make_projector,
)
from quartet_shared.logs import configure_logging
from quartet_shared.ops import dependency_checks, ops_server, serve
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings, settings_or_exit
from quartet_shared.tracing import tracing_or_exit

# The lifespan's stop budget, well inside the contract's 30 s: the worker aborts its job, the projector its batch.
WORKER_STOP_S = 20.0
PROJECTOR_STOP_S = 5.0


class JobServiceSettings(KernelSettings):
    """What every job service configures: where it listens, how it reports progress, how long a job may run."""

    # Loopback unless told otherwise: containers and pods set <PREFIX>HOST=0.0.0.0 themselves.
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    progress_interval_s: float = Field(0.25, gt=0, description="At most one progress event per interval.")
    job_timeout_s: float = Field(600.0, gt=0, description="Longest a job may run before its worker is presumed dead.")
    # A job runs inside one Kafka transaction; the broker's default ceiling is 15 minutes.
    transaction_timeout_ms: int = Field(900_000, ge=1000)
    publish_timeout_s: float = Field(10.0, gt=0, description="How long POST /jobs waits for the broker's ack.")
    topic_prefix: str = Field("", description="Prefix of the service's topics (tests keep theirs apart with it).")
    render_plots: bool = True


SettingsT = TypeVar("SettingsT", bound=JobServiceSettings)


ServiceT = TypeVar("ServiceT", bound="JobService[Any]")


def service_engine(settings: KernelSettings) -> Engine:
    """The service's database: DATABASE_URL (PostgreSQL), or a local SQLite file named after the service."""
    return make_engine(settings.database_url or default_sqlite_url(settings.service_name))


@dataclass(kw_only=True)
class JobService(Generic[SettingsT]):
    """A wired job service: settings, the job kind, the domain callable and the stores every part shares."""

    settings: SettingsT
    kind: AnyJobKind
    run: RunJob[Any, Any]
    engine: Engine
    redis: ResilientRedis
    store: JobStore
    artifacts: ArtifactStore
    results: ResultStore
    _producers: list[Producer] = field(default_factory=list)

    @classmethod
    def wire(
        cls,
        settings: SettingsT,
        kind: JobKind[SpecT, Any, CompletedT, Any],
        run: RunJob[SpecT, CompletedT],
        *,
        engine: Engine | None = None,
        **extra: Any,
    ) -> Self:
        """Connect the real adapters (nothing is contacted yet); `extra` fills a subclass's own fields.

        `run` must take the kind's spec and give its completed event (checked here, where the two meet)."""
        engine = engine if engine is not None else service_engine(settings)
        redis = ResilientRedis(settings)
        return cls(
            settings=settings,
            kind=kind,
            run=run,
            engine=engine,
            redis=redis,
            store=JobStore(engine, redis),
            artifacts=ArtifactStore(engine),
            results=ResultStore(engine, kind.name, redis),
            **extra,
        )

    def job_api(self) -> JobApi[Any]:
        """The API's ports, with its own confirmed producer."""
        producer = Producer(self.settings)
        self._producers.append(producer)
        return JobApi(self.kind, self.store, producer, self.artifacts, self.settings.publish_timeout_s)

    def worker(self) -> JobWorker[Any, Any]:
        """A worker running this kind's jobs from its jobs topic."""
        return JobWorker(
            self.kind,
            self.settings,
            self.run,
            WorkerPorts(self.artifacts, self.results, self.store),
            redis=self.redis,
            progress_interval_s=self.settings.progress_interval_s,
            job_timeout_s=self.settings.job_timeout_s,
        )

    def projector(self) -> ConsumerRunner:
        """The runner projecting progress and results into the job store."""
        return make_projector(self.kind, self.settings, self.store, self.redis)

    def close(self) -> None:
        """Close producers, Redis and the engine."""
        for producer in self._producers:
            producer.close(timeout_s=5)
        self._producers.clear()
        self.redis.close()
        self.engine.dispose()


def create_job_app(
    service: JobService[Any],
    *,
    title: str,
    description: str,
    with_projector: bool = True,
    with_worker: bool = False,
) -> FastAPI:
    """The job API app; its lifespan runs the status projector (and, for `all`, a worker) beside the API."""
    job_api = service.job_api()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.kind.ensure_topics(service.settings)
        projector = service.projector() if with_projector else None
        worker = service.worker() if with_worker else None
        if projector is not None:
            projector.start()
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop(WORKER_STOP_S)
            if projector is not None:
                projector.stop(PROJECTOR_STOP_S)

    app = create_app(
        title=title,
        description=description,
        readiness={
            "kafka": kafka_ready(service.settings),
            "redis": service.redis.ping,
            "database": database_ready(service.engine),
        },
        lifespan=lifespan,
        max_request_bytes=service.settings.max_request_bytes,
        api_keys=ApiKeys.from_settings(service.settings),
    )
    app.state.job_api = job_api
    app.include_router(job_router(service.kind))
    return app


def job_service_main(
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    settings_class: type[SettingsT],
    bootstrap: Callable[[SettingsT], ServiceT],
    create_api: Callable[[ServiceT, bool], FastAPI],
    prepare: Callable[[SettingsT, str], None] | None = None,
) -> int:
    """`prog api|worker|all`: the API (with the status projector), a worker, or both in one process.

    `create_api(service, with_worker)` builds the app; `prepare(settings, role)` runs once before any
    adapter is wired (a service may tune its process there, e.g. its math libraries' thread pools).
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("role", choices=["api", "worker", "all"], help="what this process runs")
    args = parser.parse_args(argv)
    settings = settings_or_exit(settings_class, prog)
    configure_logging(settings.log_level, settings.service_name)
    tracing_or_exit(settings.service_name, prog)
    if prepare is not None:
        prepare(settings, args.role)
    service = bootstrap(settings)
    try:
        if args.role == "worker":
            worker = service.worker()
            worker.runner.install_signal_handlers()
            # A worker container is probed and scraped on the service's port, like the API's.
            checks = dependency_checks(service.settings, service.redis, service.engine, [worker.runner])
            with ops_server(f"Quartet {prog} worker", settings.host, settings.port, checks):
                worker.run()
        else:
            app = create_api(service, args.role == "all")
            # uvicorn re-raises a caught SIGTERM/SIGINT once it has shut down; with these handlers in place
            # that re-raise is harmless and the process closes its adapters and exits 0.
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: None)
            # uvicorn turns SIGTERM into a graceful shutdown; the lifespan then stops the runners in time.
            serve(app, settings.host, settings.port)
    finally:
        service.close()
    return 0


__all__ = [
    "JobService",
    "JobServiceSettings",
    "SettingsT",
    "create_job_app",
    "job_service_main",
    "service_engine",
]
