"""The simulator's settings: the kernel's plus its own, under the SIMULATOR_ prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict
from quartet_shared.settings import KernelSettings

from simulator.scenario_io import BUNDLED_DIR


class SimulatorSettings(KernelSettings):
    """Where the simulator listens, where the system under test is, and how it controls it."""

    model_config = SettingsConfigDict(env_prefix="SIMULATOR_", extra="ignore", env_file=".env", populate_by_name=True)

    service_name: str = "simulator"
    # Loopback unless told otherwise: containers and pods set <PREFIX>HOST=0.0.0.0 themselves.
    host: str = "127.0.0.1"
    port: int = Field(8004, ge=1, le=65535)
    scenario_dir: Path = Field(
        BUNDLED_DIR,
        description="The only directory the job files (`file:`) of scenarios sent to the API are read from.",
    )
    runs_dir: Path = Field(
        Path(".local") / "simulator" / "runs",
        description="Where each run's report.json and .html go (relative to the working directory: the repo's root).",
    )
    topic_prefix: str = Field("", description="Prefix of the training and planning topics (the services' own).")
    rental_url: str = Field("http://localhost:8003", description="The rental manager's HTTP API.")
    training_url: str = Field("http://localhost:8001", description="The training API (console jobs).")
    planner_url: str = Field("http://localhost:8002", description="The planning API (console jobs).")
    console_lost_after_s: float = Field(
        300.0, gt=0, description="How long the console's live audit waits for a job's outcome before calling it lost."
    )
    console_tracked_jobs: int = Field(
        100_000,
        ge=100,
        le=10_000_000,
        description="How many awaited and how many finished jobs the console's live audit remembers by id.",
    )
    rental_topic_prefix: str = Field("", description="Prefix of rental.events and rental.commands.")
    rental_database_url: str | None = Field(
        None, description="The rental manager's database, for the lease and event checks; None: DATABASE_URL."
    )
    infra: Literal["auto", "native", "compose", "none"] = Field(
        "auto", description="How broker and Redis faults reach the servers: the native stack, Compose, or not at all."
    )
    worker_command_training: str = Field("training-worker worker", description="Command of a managed training worker.")
    worker_command_planning: str = Field("path-planner worker", description="Command of a managed planning worker.")
    worker_database_url_training: SecretStr | None = Field(
        None,
        description="Managed training workers' DATABASE_URL (their role's, password included); None: DATABASE_URL.",
    )
    worker_database_url_planning: SecretStr | None = Field(
        None,
        description="Managed planning workers' DATABASE_URL (their role's, password included); None: DATABASE_URL.",
    )
    worker_env_prefix_training: str = "TRAINING_"
    worker_env_prefix_planning: str = "PLANNER_"
    worker_group_suffix: str = Field(
        "-worker", description="A job service's worker group is its jobs topic plus this suffix (the kernel's naming)."
    )
    compose_project: str | None = Field(None, description="Compose project whose containers faults act on.")
    toxiproxy_url: str | None = Field(
        None,
        description="The API of the Compose cluster's fault proxy (http://toxiproxy:8474 from a container); "
        "unset: the address the engine publishes it on.",
    )
    compose_host: str = Field(
        "127.0.0.1",
        description="Where a Compose port the engine publishes on every interface (0.0.0.0 or ::) is reached: "
        "the loopback unless told otherwise, never the wildcard.",
    )
    cluster_state: Path | None = Field(
        None,
        description="Where `make up KAFKA_NODES=3` described its native cluster; the cluster faults act on it there.",
    )
    publish_timeout_s: float = Field(120.0, gt=0, description="How long a job publish may wait for the broker's ack.")
    http_timeout_s: float = Field(10.0, gt=0)
