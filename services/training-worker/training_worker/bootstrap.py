"""One place that wires the training-worker's real adapters; nothing here runs at import time."""

from __future__ import annotations

from dataclasses import dataclass

from quartet_shared.jobapp import JobService, service_engine
from quartet_shared.jobkind import JobTopics
from quartet_shared.settings import load_settings

from training_worker.dataset_store import DatasetStore
from training_worker.settings import TrainingSettings
from training_worker.worker import KIND, TrainingKind, TrainJobRunner


@dataclass(kw_only=True)
class Trainer(JobService[TrainingSettings]):
    """The wired service: the kernel's job service plus the store of uploaded datasets."""

    datasets: DatasetStore


def bootstrap(settings: TrainingSettings | None = None) -> Trainer:
    """Wire the real adapters: SQL (PostgreSQL, or SQLite when DATABASE_URL is unset), Redis and Kafka."""
    cfg = settings or load_settings(TrainingSettings)
    engine = service_engine(cfg)
    datasets = DatasetStore(engine)
    kind = TrainingKind(cfg, datasets.get, JobTopics.of(KIND, cfg.topic_prefix))
    run = TrainJobRunner(datasets.content, cfg.render_plots)
    return Trainer.wire(cfg, kind, run, engine=engine, datasets=datasets)
