"""Rental manager on private native servers: house search on 10,000 houses, cached against uncached, and lease
approvals under contention with a final check for double bookings.

Usage: ``uv run python bench/bench_rental.py [--quick]``; prints a Markdown section. Internally the same file
also serves the API (``bench_rental.py serve PORT [--no-cache]``), so both servers run the same code and
differ only in whether the search cache is wired in.

The search load comes from ``wrk`` (Debian's package, installed when missing): one C thread driving many
keep-alive connections costs far less CPU than a Python client would, which matters on a small machine where
the client shares the cores with the server, PostgreSQL and Redis. A Lua script walks a fixed mix of search
queries and reports throughput and latency percentiles. The approvals need a bearer token and a different
application id on every request, so they are sent by threads with httpx clients.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
from bench_kernel import log, private_stack
from quartet_shared.net import free_port
from quartet_shared.settings import KernelSettings
from quartet_tools.harness.processes import stop
from quartet_tools.infra import ensure_command
from rental_manager.adapters.orm import houses
from rental_manager.bootstrap import bootstrap
from rental_manager.domain.model import HouseStatus, Role
from rental_manager.service import rentals, users
from rental_manager.service.commands import ApplyForHouse
from rental_manager.service.schemas import AdminUserCreate
from rental_manager.service.unit import Actor
from rental_manager.settings import RentalSettings
from sqlalchemy import insert, text

FULL_HOUSES = 10_000
QUICK_HOUSES = 2_000
PASSWORD = "benchmark password"
JWT_SECRET = "bench-" + "k" * 42
TARGET_RATIO = 5.0
CONNECTIONS = 16

CITIES = ["Lyon", "Paris", "Lille", "Nantes", "Bordeaux", "Toulouse", "Nice", "Rennes", "Grenoble", "Dijon"]
DISTRICTS = ["Centre", "Nord", "Sud", "Est", "Ouest", "Gare", "Port", "Vieux", "Parc", "Campus"]
SORTS = ["newest", "rent_asc", "rent_desc", "area_desc", "available_from"]


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds


def seed_houses(settings: RentalSettings, count: int, landlords: list[uuid.UUID]) -> None:
    """Insert `count` listed houses in bulk (straight rows: the benchmark measures search, not listing)."""
    rng = random.Random(7)
    rental = bootstrap(settings)
    today = datetime.now(UTC).date()
    now = datetime.now(UTC)
    try:
        rows = []
        for i in range(count):
            city, district = rng.choice(CITIES), rng.choice(DISTRICTS)
            rooms = rng.randint(1, 6)
            start = today + timedelta(days=rng.randint(0, 180))
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "landlord_id": landlords[i % len(landlords)],
                    "title": f"{rooms}-room home in {district}, {city}",
                    "description": "",
                    "address": f"{rng.randint(1, 300)} Rue {rng.randint(1, 90)}",
                    "city": city,
                    "district": district,
                    "area_m2": round(rng.uniform(18, 160), 1),
                    "rooms": rooms,
                    "monthly_rent_cents": rng.randint(40, 400) * 500,
                    "deposit_cents": 0,
                    "facilities": rng.sample(["wifi", "lift", "balcony", "parking", "garden"], 2),
                    "status": HouseStatus.LISTED,
                    "listed_available_from": start,
                    "available_from": start,
                    "created_at": now - timedelta(seconds=i),
                    "updated_at": now,
                }
            )
        with rental.engine.begin() as conn:
            for i in range(0, len(rows), 2_000):
                conn.execute(insert(houses), rows[i : i + 2_000])
            conn.execute(text("ANALYZE houses"))
    finally:
        rental.close()


def query_mix(today: date, size: int = 48) -> list[str]:
    """A fixed mix of distinct searches: by city, district, rent, rooms, area and date, sorted and paged."""
    rng = random.Random(11)
    paths: list[str] = []
    i = 0
    while len(paths) < size:
        params: dict[str, str | int] = {"city": CITIES[i % len(CITIES)], "sort": SORTS[i % len(SORTS)]}
        if i % 2 == 0:
            params["district"] = rng.choice(DISTRICTS)
        if i % 3 == 0:
            low = rng.randint(40, 150) * 500
            params["min_rent_cents"], params["max_rent_cents"] = low, low + rng.randint(20, 120) * 500
        if i % 4 == 1:
            params["min_rooms"] = rng.randint(1, 3)
        if i % 5 == 2:
            params["min_area_m2"] = rng.randint(20, 60)
        if i % 6 == 3:
            params["available_from"] = (today + timedelta(days=rng.randint(10, 120))).isoformat()
        params["page"] = 1 + rng.randint(0, 2)
        path = "/houses?" + urlencode(params)
        if path not in paths:
            paths.append(path)
        i += 1
    return paths


WRK_SCRIPT = """
paths = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
"""


def run_wrk(base: str, paths: list[str], seconds: int, workdir: Path) -> LoadResult:
    """Drive `paths` round-robin over CONNECTIONS keep-alive connections for `seconds`."""
    wrk = ensure_command("wrk")
    script = workdir / "mix.lua"
    script.write_text(WRK_SCRIPT % ", ".join(json.dumps(p) for p in paths))
    out = subprocess.run(
        [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    raw = json.loads(line.removeprefix("RESULT "))
    return LoadResult(
        raw["requests"], raw["duration_us"] / 1e6, raw["p50_us"] / 1e3, raw["p99_us"] / 1e3, raw["errors"]
    )


@contextmanager
def api_server(settings: RentalSettings, cached: bool, workdir: Path) -> Iterator[str]:
    """This file's `serve` mode in a subprocess: the real API app, with or without the search cache."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RENTAL_", "QUARTET_"))}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        REDIS_URL=settings.redis_url,
        DATABASE_URL=settings.database_url or "",
        RENTAL_JWT_SECRET=JWT_SECRET,
        RENTAL_POOL_SIZE=str(settings.pool_size),
        RENTAL_TOPIC_PREFIX=settings.topic_prefix,
        LOG_LEVEL="WARNING",
    )
    args = [sys.executable, str(Path(__file__).resolve()), "serve", str(port)] + ([] if cached else ["--no-cache"])
    logfile = (workdir / f"api-{'cached' if cached else 'uncached'}-{port}.log").open("wb")
    proc = subprocess.Popen(args, env=env, stdout=logfile, stderr=subprocess.STDOUT, cwd=workdir)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the API exited: {Path(logfile.name).read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not start within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        stop(proc)
        logfile.close()


def serve(port: int, cached: bool) -> None:
    """Run the rental API on 127.0.0.1:`port`; without the cache every search goes to PostgreSQL."""
    import uvicorn
    from rental_manager.entrypoints.api import create_api

    rental = bootstrap(RentalSettings())
    if not cached:
        rental.service.search_cache = None
    uvicorn.run(create_api(rental), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def same_answers(cached: str, uncached: str, paths: list[str]) -> int:
    """How many of the mix's searches the two servers answer identically (all of them, or the cache lies)."""
    with httpx.Client(timeout=30) as client:
        return sum(client.get(cached + p).json() == client.get(uncached + p).json() for p in paths)


# ---- approvals under contention -----------------------------------------------------------------------------


@dataclass
class Contention:
    """Houses with many overlapping pending applications, and the landlord tokens to decide them."""

    applications: list[tuple[uuid.UUID, str]]  # (application id, the landlord's bearer token)
    houses: int


def seed_contention(settings: RentalSettings, houses: int, per_house: int) -> Contention:
    """Houses (through the service layer), each with `per_house` tenants applying for overlapping periods."""
    from rental_manager.service import houses as house_service
    from rental_manager.service.schemas import HouseCreate

    rng = random.Random(5)
    rental = bootstrap(settings)
    svc = rental.service
    admin = Actor(uuid.UUID(int=0), Role.ADMIN)
    try:

        def account(role: Role) -> tuple[Actor, str]:
            email = f"{role.value}-{uuid.uuid4().hex[:10]}@bench.example"
            data = AdminUserCreate(email=email, password=PASSWORD, full_name=f"Bench {role.value}", role=role.value)
            user = svc.run(users.register, svc.credentials, data, admin)
            return Actor(user.id, user.role), svc.login(email, PASSWORD).access_token

        landlords = [account(Role.LANDLORD) for _ in range(4)]
        tenants = [account(Role.TENANT)[0] for _ in range(per_house)]
        today = svc.today()
        applications: list[tuple[uuid.UUID, str]] = []
        for h in range(houses):
            owner, token = landlords[h % len(landlords)]
            house = svc.run(
                house_service.create_house,
                owner,
                HouseCreate(
                    title=f"Contended house {h}",
                    address=f"{h} Bench Street",
                    city="Benchville",
                    district="Hot",
                    area_m2=50,
                    rooms=2,
                    monthly_rent_cents=100_000,
                    list_now=True,
                ),
            )
            for tenant in tenants:
                start = today + timedelta(days=30 + rng.randint(0, 300))
                end = start + timedelta(days=rng.randint(60, 240))
                done = svc.run(
                    rentals.submit_application, tenant, ApplyForHouse(house_id=house.id, start_date=start, end_date=end)
                )
                applications.append((done.id, token))
        rng.shuffle(applications)
        return Contention(applications, houses)
    finally:
        rental.close()


@dataclass(frozen=True)
class ApprovalResult:
    """What the concurrent approvals did."""

    attempts: int
    outcomes: Counter[int]
    seconds: float
    p50_ms: float
    p99_ms: float


def approve_concurrently(base: str, contention: Contention, threads: int) -> ApprovalResult:
    """Every application approved at once from `threads` clients; each answer is 200 (signed) or 409."""
    queue = list(contention.applications)
    lock = threading.Lock()
    outcomes: Counter[int] = Counter()
    latencies: list[float] = []

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    application, token = queue.pop()
                sent = time.perf_counter()
                answer = client.post(
                    f"/applications/{application}/approve", headers={"Authorization": f"Bearer {token}"}
                )
                took = time.perf_counter() - sent
                with lock:
                    outcomes[answer.status_code] += 1
                    latencies.append(took)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - started
    latencies.sort()
    return ApprovalResult(
        attempts=len(latencies),
        outcomes=outcomes,
        seconds=seconds,
        p50_ms=statistics.median(latencies) * 1e3,
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3,
    )


def double_bookings(settings: RentalSettings) -> tuple[int, int, int, int]:
    """(pairs of overlapping leases on one house, leases, approved applications, still pending) in Benchville."""
    rental = bootstrap(settings)
    try:
        with rental.engine.connect() as conn:
            overlaps = conn.execute(
                text(
                    "SELECT count(*) FROM leases a JOIN leases b ON a.house_id = b.house_id AND a.id < b.id "
                    "AND daterange(a.start_date, a.end_date + 1) && daterange(b.start_date, b.end_date + 1)"
                )
            ).scalar_one()
            leases = conn.execute(text("SELECT count(*) FROM leases")).scalar_one()
            approved = conn.execute(text("SELECT count(*) FROM applications WHERE status = 'approved'")).scalar_one()
            pending = conn.execute(text("SELECT count(*) FROM applications WHERE status = 'pending'")).scalar_one()
        return int(overlaps), int(leases), int(approved), int(pending)
    finally:
        rental.close()


# ---- the report ---------------------------------------------------------------------------------------------


def _rental_settings(kernel: KernelSettings) -> RentalSettings:
    return RentalSettings(
        kafka_bootstrap_servers=kernel.kafka_bootstrap_servers,
        redis_url=kernel.redis_url,
        database_url=kernel.database_url,
        jwt_secret=JWT_SECRET,  # type: ignore[arg-type]
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        pool_size=24,
        topic_prefix="bench.",
    )


def run(quick: bool) -> str:
    """Seed, load and check on private servers; the Markdown section."""
    count = QUICK_HOUSES if quick else FULL_HOUSES
    seconds = 4 if quick else 12
    rounds = 1 if quick else 3
    houses, per_house, threads = (5, 10, 8) if quick else (20, 25, 32)
    workdir = Path(tempfile.mkdtemp(prefix="quartet-bench-rental-"))
    with private_stack() as kernel:
        settings = _rental_settings(kernel)
        rental = bootstrap(settings)
        rental.migrate()
        admin = Actor(uuid.UUID(int=0), Role.ADMIN)
        owners = [
            rental.service.run(
                users.register,
                rental.service.credentials,
                AdminUserCreate(email=f"owner{i}@bench.example", password=PASSWORD, full_name="Owner", role="landlord"),
                admin,
            ).id
            for i in range(20)
        ]
        rental.close()
        log(f"seeding {count} houses")
        seed_houses(settings, count, owners)
        paths = query_mix(datetime.now(UTC).date())
        cached_runs: list[LoadResult] = []
        uncached_runs: list[LoadResult] = []
        with api_server(settings, True, workdir) as cached, api_server(settings, False, workdir) as uncached:
            identical = same_answers(cached, uncached, paths)  # also warms the cache and PostgreSQL's buffers
            for r in range(rounds):
                log(f"search load, round {r + 1}: uncached")
                uncached_runs.append(run_wrk(uncached, paths, seconds, workdir))
                log(f"search load, round {r + 1}: cached")
                cached_runs.append(run_wrk(cached, paths, seconds, workdir))
            log(f"seeding {houses} houses x {per_house} overlapping applications")
            contention = seed_contention(settings, houses, per_house)
            log(f"approving {len(contention.applications)} applications from {threads} threads")
            approvals = approve_concurrently(cached, contention, threads)
        overlaps, leases, approved, pending = double_bookings(settings)
    shutil.rmtree(workdir, ignore_errors=True)

    def best(runs: list[LoadResult]) -> LoadResult:
        return max(runs, key=lambda r: r.rate)

    hot, cold = best(cached_runs), best(uncached_runs)
    ratio = hot.rate / cold.rate
    verdict = f"met (≥ {TARGET_RATIO:.0f}×)" if ratio >= TARGET_RATIO else f"**missed** (< {TARGET_RATIO:.0f}×)"
    signed = approvals.outcomes.get(200, 0)
    refused = approvals.outcomes.get(409, 0)
    other = approvals.attempts - signed - refused
    lines = [
        "## Rental manager: house search and lease approvals",
        "",
        f"{count:,} listed houses in PostgreSQL (private native servers), the API in one uvicorn process on "
        f"127.0.0.1. Search load: `wrk`, one thread, {CONNECTIONS} keep-alive connections, a fixed mix of "
        f"{len(paths)} searches (city, district, rent range, rooms, area, availability; five sort orders; pages "
        f"1-3), {seconds} s per run, best of {rounds} alternating run(s). *Cached*: the service as shipped, "
        "cache-aside in Redis, warm. *Uncached*: the same app with the cache unwired, every search a query. "
        f"{identical} of {len(paths)} searches answered identically by both.",
        "",
        "| search | requests/s | p50 (ms) | p99 (ms) | errors |",
        "|---|---:|---:|---:|---:|",
        f"| uncached (PostgreSQL) | {cold.rate:,.0f} | {cold.p50_ms:.1f} | {cold.p99_ms:.1f} | {cold.errors} |",
        f"| cached (Redis, warm) | {hot.rate:,.0f} | {hot.p50_ms:.1f} | {hot.p99_ms:.1f} | {hot.errors} |",
        "",
        f"Cached / uncached throughput: **{ratio:.1f}×**, target {verdict}.",
        "",
        f"Lease approvals under contention: {contention.houses} houses, {per_house} tenants each applying for "
        f"overlapping periods ({approvals.attempts} applications), all approved at once from {threads} client "
        "threads over HTTP. Each approval locks its house row; the leases table's exclusion constraint backs it.",
        "",
        "| approvals | value |",
        "|---|---:|",
        f"| decisions per second (200 or 409) | {approvals.attempts / approvals.seconds:,.1f} |",
        f"| leases signed per second | {signed / approvals.seconds:,.1f} |",
        f"| signed (200) / refused as overlapping or already rejected (409) / other | {signed} / {refused} / {other} |",
        f"| p50 / p99 latency (ms) | {approvals.p50_ms:.0f} / {approvals.p99_ms:.0f} |",
        f"| leases in the database / approved applications / still pending | {leases} / {approved} / {pending} |",
        f"| **overlapping leases on one house (double bookings)** | **{overlaps}** |",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    """`bench_rental.py [--quick]` prints the section; `bench_rental.py serve PORT [--no-cache]` runs the API."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", nargs="?", choices=["bench", "serve"], default="bench")
    parser.add_argument("port", nargs="?", type=int)
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.mode == "serve":
        serve(args.port, cached=not args.no_cache)
    else:
        print(run(quick=args.quick))


if __name__ == "__main__":
    main()
