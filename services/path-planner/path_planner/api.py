"""The path-planner's HTTP API: the kernel's job API for planning jobs, plus health, readiness and metrics."""

from __future__ import annotations

from fastapi import FastAPI
from quartet_shared.jobapp import create_job_app

from path_planner.bootstrap import Planner


def create_api(planner: Planner, *, with_projector: bool = True, with_worker: bool = False) -> FastAPI:
    """The app; its lifespan runs the status projector (and, for `all`, a worker) beside the API."""
    return create_job_app(
        planner,
        title="Quartet path-planner",
        description="UAV path planning over 3-D terrain with threats, as Kafka jobs.",
        with_projector=with_projector,
        with_worker=with_worker,
    )
