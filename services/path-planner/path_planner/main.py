"""`path-planner api|worker|all`: the service's console script."""

from __future__ import annotations

from quartet_shared.jobapp import job_service_main

from path_planner.api import create_api
from path_planner.bootstrap import bootstrap
from path_planner.settings import PlannerSettings


def main(argv: list[str] | None = None) -> int:
    """Run the API (with the status projector), a worker, or both in one process."""
    return job_service_main(
        argv,
        prog="path-planner",
        description=__doc__ or "",
        settings_class=PlannerSettings,
        bootstrap=bootstrap,
        create_api=lambda planner, with_worker: create_api(planner, with_worker=with_worker),
    )


if __name__ == "__main__":
    raise SystemExit(main())
