"""`simulator api|run`: the simulator's console script."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from quartet_shared.logs import configure_logging
from quartet_shared.settings import SettingsError, load_settings
from quartet_shared.tracing import TracingConfigError, configure_tracing

from simulator.cli import EXIT_UNUSABLE, simulate_file
from simulator.settings import SimulatorSettings


def main(argv: list[str] | None = None) -> int:
    """Serve the runs API on port 8004, or run one scenario and exit with the audit's verdict."""
    parser = argparse.ArgumentParser(prog="simulator", description=__doc__)
    sub = parser.add_subparsers(dest="role", required=True)
    sub.add_parser("api", help="serve POST /runs, run status and reports")
    run = sub.add_parser("run", help="run a scenario file (or a bundled scenario's name) and print the report summary")
    run.add_argument("scenario", help="scenario YAML file, or the name of a bundled scenario")
    run.add_argument("--out", type=Path, default=None, help="where report.json and report.html go")
    run.add_argument("--json", action="store_true", help="print the whole report as JSON")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(SimulatorSettings)
        configure_tracing(settings.service_name)
    except (SettingsError, TracingConfigError) as exc:
        print(f"simulator: {exc}")
        return EXIT_UNUSABLE
    configure_logging(settings.log_level, settings.service_name)
    if args.role == "run":
        return simulate_file(args.scenario, out=args.out, as_json=args.json)
    from quartet_shared.ops import serve

    from simulator.api import create_api

    app = create_api(settings)
    # uvicorn turns SIGTERM into a graceful shutdown; the lifespan stops a running simulation in time.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    serve(app, settings.host, settings.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
