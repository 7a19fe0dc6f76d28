"""A job worker process of the scripted planning kind, for fault tests: `python -m tests.support.job_worker --help`."""

from __future__ import annotations

import argparse
import functools
import logging
from pathlib import Path

from quartet_shared.artifacts import ArtifactStore, ResultStore
from quartet_shared.cache import ResilientRedis
from quartet_shared.db import make_engine
from quartet_shared.jobs import JobStore
from quartet_shared.jobservice import JobTopics, JobWorker, WorkerPorts
from quartet_shared.logs import configure_logging
from quartet_shared.settings import KernelSettings
from quartet_tools.harness.effect_worker import pausing_runner

from tests.support.scripted_jobs import Script, kind_for


def main() -> None:
    """Run until SIGTERM (or SIGKILL)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--topic-prefix", required=True)
    parser.add_argument("--results-kind", required=True, help="the ResultStore's kind (its cache namespace)")
    parser.add_argument("--pause-before-commit-s", type=float, default=0.0)
    parser.add_argument("--marker", type=Path, default=Path("/dev/null"))
    args = parser.parse_args()
    configure_logging("INFO", "job-worker")
    logging.getLogger("kafka").setLevel(logging.ERROR)
    settings = KernelSettings()
    engine = make_engine(settings.database_url or "")
    redis = ResilientRedis(settings)
    kind = kind_for(JobTopics.of("planning", args.topic_prefix))
    ports = WorkerPorts(ArtifactStore(engine), ResultStore(engine, args.results_kind, redis), JobStore(engine, redis))
    runner_class = functools.partial(pausing_runner, pause_s=args.pause_before_commit_s, marker=args.marker)
    worker = JobWorker(kind, settings, Script(), ports, redis=redis, runner_class=runner_class)
    worker.runner.install_signal_handlers()
    worker.run()


if __name__ == "__main__":
    main()
