"""`rental-manager api|relay|worker|all|migrate`: the service's console script.

Every role first migrates the database to the latest schema (an advisory lock on PostgreSQL serialises
processes starting together), so `make up` needs no separate step; `migrate` does only that.
"""

from __future__ import annotations

import argparse
import signal
import threading

from quartet_shared.logs import configure_logging
from quartet_shared.ops import dependency_checks, ops_server, serve
from quartet_shared.settings import settings_or_exit
from quartet_shared.tracing import tracing_or_exit

from rental_manager.bootstrap import Rental, bootstrap
from rental_manager.entrypoints.api import create_api
from rental_manager.settings import RentalSettings


def _run_relay(rental: Rental) -> None:
    rental.ensure_topics()
    relay = rental.relay()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: relay.stopping.set())
    relay.run()


def _run_worker(rental: Rental) -> None:
    rental.ensure_topics()
    commands, cache = rental.command_runner(), rental.cache_runner()
    scheduler = rental.scheduler()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    cache.start()
    scheduler.start()
    commands.start()
    while not stop.wait(0.5):
        if commands.error is not None or cache.error is not None:
            break
    scheduler.stop(5)
    commands.stop(10)
    cache.stop(10)


def main(argv: list[str] | None = None) -> int:
    """Run the API, the outbox relay, the worker, all three in one process, or just the migrations."""
    parser = argparse.ArgumentParser(prog="rental-manager", description=__doc__)
    parser.add_argument("role", choices=["api", "relay", "worker", "all", "migrate"], help="what this process runs")
    args = parser.parse_args(argv)
    settings = settings_or_exit(RentalSettings, "rental-manager")
    configure_logging(settings.log_level, settings.service_name)
    tracing_or_exit(settings.service_name, "rental-manager")
    rental = bootstrap(settings)
    try:
        rental.migrate()
        if args.role == "migrate":
            return 0
        if args.role in ("relay", "worker"):
            # A relay or worker container is probed and scraped on the service's port, like the API's.
            checks = dependency_checks(settings, rental.redis, rental.engine)
            with ops_server(f"Quartet rental-manager {args.role}", settings.host, settings.port, checks):
                (_run_relay if args.role == "relay" else _run_worker)(rental)
        else:
            # Accounts are the API's concern; a worker and relay starting beside it must not race it here.
            rental.ensure_admin()
            app = create_api(rental, with_relay=args.role == "all", with_worker=args.role == "all")
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: None)
            # uvicorn turns SIGTERM into a graceful shutdown; the lifespan then stops the relay and the worker.
            serve(app, settings.host, settings.port)
    finally:
        rental.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
