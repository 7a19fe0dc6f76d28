"""The path-planner's settings: the kernel's job-service settings plus its own, under the PLANNER_ prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from quartet_shared.jobapp import JobServiceSettings


class PlannerSettings(JobServiceSettings):
    """Where the planner listens and how much work one job may ask for."""

    model_config = SettingsConfigDict(env_prefix="PLANNER_", extra="ignore", env_file=".env", populate_by_name=True)

    service_name: str = "path-planner"
    port: int = Field(8002, ge=1, le=65535)
    max_evaluations: int = Field(
        2_000_000, gt=0, description="Most objective evaluations one job may spend over all its runs."
    )
    terrain_dir: Path | None = Field(
        None, description="Where file terrains live; None: QUARTET_TERRAIN_DIR or default."
    )
