"""The path-planner's settings: the kernel's plus its own, under the PLANNER_ prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from quartet_shared.settings import KernelSettings


class PlannerSettings(KernelSettings):
    """Where the planner listens, how much work one job may ask for, and how it reports progress."""

    model_config = SettingsConfigDict(env_prefix="PLANNER_", extra="ignore", env_file=".env", populate_by_name=True)

    service_name: str = "path-planner"
    host: str = "0.0.0.0"
    port: int = Field(8002, ge=1, le=65535)
    max_evaluations: int = Field(
        2_000_000, gt=0, description="Most objective evaluations one job may spend over all its runs."
    )
    terrain_dir: Path | None = Field(
        None, description="Where file terrains live; None: QUARTET_TERRAIN_DIR or default."
    )
    progress_interval_s: float = Field(0.25, gt=0, description="At most one progress event per interval.")
    job_timeout_s: float = Field(600.0, gt=0, description="Longest a job may run before its worker is presumed dead.")
    # A job runs inside one Kafka transaction; the broker's default ceiling is 15 minutes.
    transaction_timeout_ms: int = Field(900_000, ge=1000)
    publish_timeout_s: float = Field(10.0, gt=0, description="How long POST /jobs waits for the broker's ack.")
    topic_prefix: str = Field("", description="Prefix of the planning topics (tests keep theirs apart with it).")
    render_plots: bool = True
