"""`training-worker api|worker|all`: the service's console script."""

from __future__ import annotations

from quartet_shared.jobapp import job_service_main
from threadpoolctl import threadpool_limits

from training_worker.api import create_api
from training_worker.bootstrap import bootstrap
from training_worker.settings import TrainingSettings


def limit_math_threads(settings: TrainingSettings, role: str) -> None:
    """Cap the BLAS/OpenMP thread pools of a process that trains (TRAINING_BLAS_THREADS, default 1).

    Jobs are small to mid-sized (most matrices here are a few thousand rows), where a multi-threaded BLAS
    call costs more in waking and spinning threads than it saves; and on a 2-core host those spinning
    threads also starve the API, the Kafka client threads and the other services. Measured on the example
    jobs plus a 20,000 × 50 GD and SGD fit on the shared 2-core host: 2.1-2.6 s wall with one thread against
    2.9-4.0 s with two, for the same CPU time; mini-batch products gain nothing from a second thread (see
    bench/bench_training.py). A worker process per core scales better than threads per worker; set
    TRAINING_BLAS_THREADS higher for a host that runs large single jobs.
    """
    if role != "api" and settings.blas_threads is not None:
        # Not a context manager: the limit is meant to last as long as the process.
        threadpool_limits(limits=settings.blas_threads)


def main(argv: list[str] | None = None) -> int:
    """Run the API (with the status projector), a worker, or both in one process."""
    return job_service_main(
        argv,
        prog="training-worker",
        description=__doc__ or "",
        settings_class=TrainingSettings,
        bootstrap=bootstrap,
        create_api=lambda trainer, with_worker: create_api(trainer, with_worker=with_worker),
        prepare=limit_math_threads,
    )


if __name__ == "__main__":
    raise SystemExit(main())
