"""`path-planner api|worker|all`: the service's console script."""

from __future__ import annotations

import argparse
import signal

import uvicorn
from quartet_shared.logs import configure_logging
from quartet_shared.settings import load_settings

from path_planner.api import create_api
from path_planner.bootstrap import bootstrap
from path_planner.settings import PlannerSettings


def main(argv: list[str] | None = None) -> int:
    """Run the API (with the status projector), a worker, or both in one process."""
    parser = argparse.ArgumentParser(prog="path-planner", description=__doc__)
    parser.add_argument("role", choices=["api", "worker", "all"], help="what this process runs")
    args = parser.parse_args(argv)
    settings = load_settings(PlannerSettings)
    configure_logging(settings.log_level, settings.service_name)
    planner = bootstrap(settings)
    try:
        if args.role == "worker":
            worker = planner.worker()
            worker.runner.install_signal_handlers()
            worker.run()
        else:
            app = create_api(planner, with_worker=args.role == "all")
            # uvicorn re-raises a caught SIGTERM/SIGINT once it has shut down; with these handlers in place
            # that re-raise is harmless and the process closes its adapters and exits 0.
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: None)
            # uvicorn turns SIGTERM into a graceful shutdown; the lifespan then stops the runners in time.
            uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, timeout_graceful_shutdown=3)
    finally:
        planner.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
