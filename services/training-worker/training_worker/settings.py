"""The training-worker's settings: the kernel's job-service settings plus its own, under the TRAINING_ prefix."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from quartet_contracts.schemas.training import MAX_ROWS
from quartet_shared.jobapp import JobServiceSettings


class TrainingSettings(JobServiceSettings):
    """Where the trainer listens, how much data and work one job may ask for, and how its math runs."""

    model_config = SettingsConfigDict(env_prefix="TRAINING_", extra="ignore", env_file=".env", populate_by_name=True)

    service_name: str = "training-worker"
    port: int = Field(8001, ge=1, le=65535)
    max_rows: int = Field(200_000, gt=0, le=MAX_ROWS, description="Most rows one job's data may have.")
    max_epochs: int = Field(
        500_000, gt=0, description="Most epochs one job may run over all its fits (a sweep fits once per λ and fold)."
    )
    max_work: float = Field(
        5e10, gt=0, description="Most epochs × rows × features one job may ask for: a bound on its compute."
    )
    max_upload_bytes: int = Field(32 * 1024 * 1024, gt=0, description="Largest CSV POST /datasets accepts.")
    blas_threads: int | None = Field(
        1, ge=1, description="Threads of the BLAS/OpenMP pools in a worker process; None leaves the library default."
    )
