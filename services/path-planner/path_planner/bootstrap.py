"""One place that wires the path-planner's real adapters; nothing here runs at import time."""

from __future__ import annotations

from dataclasses import dataclass, field

from quartet_shared.artifacts import ArtifactStore, ResultStore
from quartet_shared.cache import ResilientRedis
from quartet_shared.consumer import ConsumerRunner
from quartet_shared.db import default_sqlite_url, make_engine
from quartet_shared.jobs import JobStore
from quartet_shared.jobservice import JobApi, JobKind, JobTopics, JobWorker, WorkerPorts, make_projector
from quartet_shared.producer import Producer
from quartet_shared.settings import load_settings
from sqlalchemy import Engine

from path_planner.settings import PlannerSettings
from path_planner.terrain_io import TerrainFileLoader
from path_planner.worker import KIND, PlanJobRunner, planning_kind


@dataclass
class Planner:
    """The wired service: settings, the job kind, and the stores every part shares."""

    settings: PlannerSettings
    kind: JobKind
    engine: Engine
    redis: ResilientRedis
    store: JobStore
    artifacts: ArtifactStore
    results: ResultStore
    _producers: list[Producer] = field(default_factory=list)

    def job_api(self) -> JobApi:
        """The API's ports, with its own confirmed producer."""
        producer = Producer(self.settings)
        self._producers.append(producer)
        return JobApi(self.kind, self.store, producer, self.artifacts, self.settings.publish_timeout_s)

    def worker(self) -> JobWorker:
        """A worker running planning jobs from the jobs topic."""
        loader = TerrainFileLoader(self.settings.terrain_dir)
        run = PlanJobRunner(loader, self.settings.max_evaluations, self.settings.render_plots)
        return JobWorker(
            self.kind,
            self.settings,
            run,
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


def bootstrap(settings: PlannerSettings | None = None) -> Planner:
    """Wire the real adapters: SQL (PostgreSQL, or SQLite when DATABASE_URL is unset), Redis and Kafka."""
    cfg = settings or load_settings(PlannerSettings)
    engine = make_engine(cfg.database_url or default_sqlite_url(cfg.service_name))
    redis = ResilientRedis(cfg)
    kind = planning_kind(cfg.max_evaluations, JobTopics.of(KIND, cfg.topic_prefix))
    return Planner(
        settings=cfg,
        kind=kind,
        engine=engine,
        redis=redis,
        store=JobStore(engine, redis),
        artifacts=ArtifactStore(engine),
        results=ResultStore(engine, KIND, redis),
    )
