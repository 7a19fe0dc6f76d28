"""The path-planner's HTTP API: the kernel's job API for planning jobs, plus health, readiness and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from quartet_shared.http import create_app
from quartet_shared.jobservice import JobWorker, database_ready, job_router, kafka_ready

from path_planner.bootstrap import Planner


def create_api(planner: Planner, *, with_projector: bool = True, with_worker: bool = False) -> FastAPI:
    """The app; its lifespan runs the status projector (and, for `all`, a worker) beside the API."""
    job_api = planner.job_api()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        planner.kind.ensure_topics(planner.settings)
        projector = planner.projector() if with_projector else None
        worker: JobWorker | None = planner.worker() if with_worker else None
        if projector is not None:
            projector.start()
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            # Together well inside the contract's 30 s: the worker aborts its job, the projector its batch.
            if worker is not None:
                worker.stop(20)
            if projector is not None:
                projector.stop(5)

    app = create_app(
        title="Quartet path-planner",
        description="UAV path planning over 3-D terrain with threats, as Kafka jobs.",
        readiness={
            "kafka": kafka_ready(planner.settings),
            "redis": planner.redis.ping,
            "database": database_ready(planner.engine),
        },
        lifespan=lifespan,
    )
    app.state.job_api = job_api
    app.include_router(job_router(planner.kind))
    return app
