"""The simulator's HTTP API on port 8004: start a run, follow it, read its report (JSON or HTML).

One run at a time: runs inject faults into the shared system, so a second one while the first is going
gets 409, as does one while the console's capacity search loads the system. A scenario that cannot be used
gets 422 naming each line and field; a system that is not up gets 503 naming each unreachable part.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from quartet_shared.auth import SIMULATOR_ADMIN, SIMULATOR_RUN, ApiKey, ApiKeys, authenticate, require_scope
from quartet_shared.http import Problem, create_app

from simulator.bootstrap import bundled_scenarios, make_simulation
from simulator.console import mount_console
from simulator.console.capacity import CapacitySearches
from simulator.console.chaos import Chaos
from simulator.console.feed import LiveFeed
from simulator.domain.report import RunReport
from simulator.domain.scenario import Scenario
from simulator.preflight import PreflightError, kafka_problem
from simulator.run import Simulation
from simulator.run_request import RunCreate, admin_reason, requested_scenario
from simulator.settings import SimulatorSettings

RunStatus = Literal["running", "passed", "failed", "error"]


_MAX_RUN_ID = 64


class RunPublic(BaseModel):
    """A run as the API shows it."""

    id: str
    scenario: str
    status: RunStatus
    phase: str
    created_at: str
    finished_at: str | None = None
    elapsed_s: float = 0.0
    submitted: int = 0
    results: int = 0
    faults: int = 0
    passed: bool | None = None
    error: str | None = None
    summary: str | None = None
    links: dict[str, str] = Field(default_factory=dict)


@dataclass
class RunEntry:
    """A run the manager knows: live (with its simulation) or finished (with its report)."""

    id: str
    scenario: str
    created_at: datetime
    simulation: Simulation | None = None
    thread: threading.Thread | None = None
    finished_at: datetime | None = None
    report: RunReport | None = None
    error: str | None = None

    @property
    def status(self) -> RunStatus:
        """running, passed, failed (audit), or error (the run could not complete)."""
        if self.error is not None:
            return "error"
        if self.report is None:
            return "running"
        return "passed" if self.report.passed else "failed"

    def public(self, base: str) -> RunPublic:
        """The API view, with links to itself and its reports."""
        sim = self.simulation
        status = sim.status if sim is not None else None
        links = {"self": f"{base}/runs/{self.id}"}
        if self.report is not None:
            links |= {"report": f"{base}/runs/{self.id}/report", "html": f"{base}/runs/{self.id}/report.html"}
        return RunPublic(
            id=self.id,
            scenario=self.scenario,
            status=self.status,
            phase=status.phase if status is not None else self.status,
            created_at=self.created_at.isoformat(),
            finished_at=self.finished_at.isoformat() if self.finished_at else None,
            elapsed_s=status.elapsed_s if status is not None else 0.0,
            submitted=status.submitted
            if status is not None
            else self.report.audit.jobs.submitted
            if self.report
            else 0,
            results=status.results if status is not None else self.report.audit.jobs.with_result if self.report else 0,
            faults=status.faults if status is not None else len(self.report.faults) if self.report else 0,
            passed=self.report.passed if self.report is not None else None,
            error=self.error,
            summary=self.report.summary() if self.report is not None else None,
            links=links,
        )


SimulationFactory = Callable[[SimulatorSettings, Scenario], Simulation]
_T = TypeVar("_T")


@dataclass
class RunManager:
    """Starts runs on threads, one at a time, and finds finished ones on disk."""

    settings: SimulatorSettings
    factory: SimulationFactory = field(default=lambda s, sc: make_simulation(s, sc))
    runs: dict[str, RunEntry] = field(default_factory=dict)
    # The console's capacity search, once mounted: it loads the same system, so a run waits until it ended.
    capacity: CapacitySearches | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def active(self) -> RunEntry | None:
        """The run in progress, if any."""
        return next((r for r in self.runs.values() if r.status == "running"), None)

    def start(self, scenario: Scenario) -> RunEntry:
        """Preflight and start a run; Problem 409 if one or a capacity search is going, 503 naming what is
        unreachable."""
        with self._lock:
            busy = self.active()
            if busy is not None:
                raise Problem(409, "Conflict", f"run {busy.id} is still going; one run at a time", run=busy.id)
            search = self.capacity.running() if self.capacity is not None else None
            if search is not None:
                detail = f"capacity search {search.id} is loading the system; run once it ended"
                raise Problem(409, "Conflict", detail, search=search.id)
            simulation = self.factory(self.settings, scenario)
            try:
                simulation.prepare()
            except PreflightError as exc:
                raise Problem(503, "Service Unavailable", str(exc), unreachable=exc.problems) from exc
            entry = RunEntry(simulation.run_id, scenario.name, datetime.now(UTC), simulation)
            entry.thread = threading.Thread(target=self._run, args=(entry,), name=f"run-{entry.id}", daemon=True)
            self.runs[entry.id] = entry
            entry.thread.start()
            return entry

    def start_beside(self, start: Callable[[], _T], what: str) -> _T:
        """Start `what`, another load on the system, through `start` unless a run is going (Problem 409).

        Under the lock a run's start holds until it is registered, so the two cannot both begin.
        """
        with self._lock:
            busy = self.active()
            if busy is not None:
                detail = f"run {busy.id} is loading the system; start {what} once it ended"
                raise Problem(409, "Conflict", detail, run=busy.id)
            return start()

    def _run(self, entry: RunEntry) -> None:
        assert entry.simulation is not None
        try:
            entry.report = entry.simulation.run()
        except Exception as exc:  # the run's outcome is reported through its status, never lost
            entry.error = f"{type(exc).__name__}: {exc}"
        entry.finished_at = datetime.now(UTC)

    def get(self, run_id: str) -> RunEntry | None:
        """A run by id: in memory, or finished on disk from an earlier process."""
        entry = self.runs.get(run_id)
        if entry is not None:
            return entry
        path = self.settings.runs_dir / run_id / "report.json"
        # Run ids are 12 hex digits; a longer name could even be one the file system refuses (ENAMETOOLONG).
        if not run_id.isalnum() or len(run_id) > _MAX_RUN_ID or not path.is_file():
            return None
        report = RunReport.model_validate_json(path.read_text())
        created = datetime.fromisoformat(report.started_at)
        return RunEntry(
            run_id, report.scenario, created, finished_at=datetime.fromisoformat(report.finished_at), report=report
        )

    def report_page(self, entry: RunEntry) -> Path:
        """Where a finished run's HTML report is; Problem 409 while it has none."""
        out = entry.simulation.out_dir if entry.simulation is not None else self.settings.runs_dir / entry.id
        path = out / "report.html"
        if entry.report is None or not path.is_file():
            raise Problem(409, "Conflict", f"run {entry.id} is {entry.status}: no report yet")
        return path

    def stop_all(self, timeout_s: float) -> None:
        """Stop every running run at once (no settling) and wait for the runs to report."""
        for entry in list(self.runs.values()):
            if entry.simulation is not None and entry.status == "running":
                entry.simulation.stop(settle=False)
        for entry in list(self.runs.values()):
            if entry.thread is not None:
                entry.thread.join(timeout_s)


def get_manager(request: Request) -> RunManager:
    """The app's RunManager."""
    manager: RunManager = request.app.state.runs
    return manager


ManagerDep = Annotated[RunManager, Depends(get_manager)]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _require(manager: RunManager, run_id: str) -> RunEntry:
    entry = manager.get(run_id)
    if entry is None:
        raise Problem(404, "Not Found", f"no run {run_id}")
    return entry


# The whole API, reads included: a report names the system's weak points, a run loads the system.
router = APIRouter(tags=["runs"], dependencies=[require_scope(SIMULATOR_RUN)])


@router.post("/runs", status_code=202, summary="Start a run")
def create_run(
    body: RunCreate, manager: ManagerDep, request: Request, key: Annotated[ApiKey, Depends(authenticate)]
) -> JSONResponse:
    """Validate the scenario, check the system is up, and start the run (faults need simulator:admin)."""
    scenario = requested_scenario(body, manager.settings.scenario_dir)
    reason = admin_reason(scenario)
    if reason is not None:
        key.require(SIMULATOR_ADMIN, reason)
    entry = manager.start(scenario)
    public = entry.public(_base(request))
    return JSONResponse(public.model_dump(mode="json"), status_code=202, headers={"Location": public.links["self"]})


@router.get("/runs", summary="Runs of this process")
def list_runs(manager: ManagerDep, request: Request) -> list[RunPublic]:
    """Every run started since the service started, newest first."""
    entries = sorted(manager.runs.values(), key=lambda e: e.created_at, reverse=True)
    return [e.public(_base(request)) for e in entries]


@router.get("/runs/{run_id}", summary="A run's status")
def get_run(run_id: str, manager: ManagerDep, request: Request) -> RunPublic:
    """Phase, counts so far and, once finished, the verdict and summary."""
    return _require(manager, run_id).public(_base(request))


@router.delete("/runs/{run_id}", status_code=202, summary="Cut a run's load short")
def stop_run(run_id: str, manager: ManagerDep, request: Request) -> RunPublic:
    """Stop sending load; the run still settles, audits and reports."""
    entry = _require(manager, run_id)
    if entry.simulation is not None:
        entry.simulation.stop()
    return entry.public(_base(request))


@router.get("/runs/{run_id}/report", summary="A finished run's report (JSON)")
def get_report(run_id: str, manager: ManagerDep) -> dict[str, Any]:
    """The whole report: audit, counts, series and faults (409 while running)."""
    entry = _require(manager, run_id)
    if entry.report is None:
        raise Problem(409, "Conflict", f"run {run_id} is {entry.status}: no report yet", error=entry.error)
    return entry.report.model_dump(mode="json")


@router.get("/runs/{run_id}/report.html", summary="A finished run's report page")
def get_report_html(run_id: str, manager: ManagerDep) -> FileResponse:
    """The self-contained HTML report (409 while running)."""
    return FileResponse(manager.report_page(_require(manager, run_id)), media_type="text/html")


@router.get("/scenarios", summary="Bundled scenarios")
def scenarios() -> list[str]:
    """Names usable as `builtin` in POST /runs."""
    return sorted(bundled_scenarios())


def create_api(
    settings: SimulatorSettings,
    manager: RunManager | None = None,
    feed: LiveFeed | None = None,
    chaos: Chaos | None = None,
    capacity: CapacitySearches | None = None,
) -> FastAPI:
    """The app: runs, their status and reports, the bundled scenarios, health, readiness and the live console."""
    runs = manager or RunManager(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        console.start()
        yield
        console.stop()
        # Within the contract's 30 s: the load stops at once; settling and the report get the rest.
        runs.stop_all(20)

    app = create_app(
        title="Quartet simulator",
        description="Seeded workloads, injected faults and an end-to-end audit of every job and event.",
        readiness={"kafka": lambda: kafka_problem(settings) is None},
        lifespan=lifespan,
        max_request_bytes=settings.max_request_bytes,
        api_keys=ApiKeys.from_settings(settings),
    )
    app.state.runs = runs
    app.include_router(router)
    console = mount_console(app, settings, feed, chaos, capacity)
    runs.capacity = console.capacity
    return app
