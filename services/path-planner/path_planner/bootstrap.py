"""One place that wires the path-planner's real adapters; nothing here runs at import time."""

from __future__ import annotations

from quartet_shared.jobapp import JobService
from quartet_shared.jobkind import JobTopics
from quartet_shared.settings import load_settings

from path_planner.settings import PlannerSettings
from path_planner.terrain_io import TerrainFileLoader
from path_planner.worker import KIND, PlanJobRunner, PlanningKind

Planner = JobService[PlannerSettings]
"""The wired service: settings, the planning job kind, the planning runner and the shared stores."""


def bootstrap(settings: PlannerSettings | None = None) -> Planner:
    """Wire the real adapters: SQL (PostgreSQL, or SQLite when DATABASE_URL is unset), Redis and Kafka."""
    cfg = settings or load_settings(PlannerSettings)
    loader = TerrainFileLoader(cfg.terrain_dir)
    kind = PlanningKind(cfg.max_evaluations, JobTopics.of(KIND, cfg.topic_prefix), loader)
    run = PlanJobRunner(loader, cfg.render_plots)
    return Planner.wire(cfg, kind, run)
