"""The capacity page: an admin starts the simulator's capacity search, watches it live and reads its result.

The search is `simulator.capacity`'s, the one `quartet simulate capacity` runs: this module only runs it on a
thread, one at a time, keeps what the search's watch reports, and turns that into the page's and the stream's
view (the move the search is making, the offered and achieved rates, p95 latency and lag per interval, and the
sustained rate with the latency at it once it ended). A stop ends the search within its current interval.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from pydantic import Field, ValidationError
from quartet_contracts.validation import error_fields
from quartet_shared.auth import SIMULATOR_ADMIN
from quartet_shared.http import Problem

from simulator.capacity import KINDS, CapacityReport, CapacityRun, Watch, search_capacity
from simulator.console.csrf import CsrfChecked
from simulator.console.views import ApiViewer, PageViewer, admin_only, render
from simulator.domain.capacity import CapacitySearch, Move, Step
from simulator.settings import SimulatorSettings

log = logging.getLogger(__name__)

Searcher = Callable[[CapacityRun, Path, threading.Event, Watch], CapacityReport]
Status = Literal["idle", "running", "stopping", "done", "failed"]
# The console keeps a search's every interval in memory and streams them each second: these bound both.
MAX_CONSOLE_DURATION_S = 3600.0
MIN_CONSOLE_INTERVAL_S = 1.0
MAX_CONSOLE_WORKERS = 8
FORM_FIELDS = ("interval_s", "hold_s", "start_rate", "increase_step", "max_rate", "max_duration_s", "workers")
STOP_WAIT_S = 15.0

router = APIRouter(include_in_schema=False)


class ConsoleCapacityRun(CapacityRun):
    """A search started from the console: the CLI's parameters, within what the console keeps in memory."""

    interval_s: float = Field(5.0, ge=MIN_CONSOLE_INTERVAL_S, le=300.0, description="How long each rate is kept.")
    max_duration_s: float = Field(300.0, gt=0.0, le=MAX_CONSOLE_DURATION_S, description="The search ends by then.")
    workers: int = Field(0, ge=0, le=MAX_CONSOLE_WORKERS, description="Workers per kind the search starts; 0: none.")


@dataclass
class Search:
    """One search the console started: its parameters, the intervals so far, and how it ended."""

    id: str
    run: CapacityRun
    out_dir: Path
    started: float
    stop: threading.Event = field(default_factory=threading.Event)
    steps: list[Step] = field(default_factory=list)
    rate: float = 0.0
    finished: float | None = None
    report: CapacityReport | None = None
    error: str | None = None
    thread: threading.Thread | None = None

    @property
    def status(self) -> Status:
        """running, stopping (asked to stop, not ended yet), done, or failed (it could not complete)."""
        if self.error is not None:
            return "failed"
        if self.finished is not None:
            return "done"
        return "stopping" if self.stop.is_set() else "running"

    @property
    def move(self) -> Move:
        """What the search is doing now: the move that chose the rate being offered."""
        if self.finished is not None:
            return Move.DONE
        return self.steps[-1].move if self.steps else Move.SLOW_START


def series(steps: list[Step]) -> dict[str, list[Any]]:
    """The intervals as the page's chart series: end time (s), rates, p95 (s), lag and the move of each."""
    return {
        "t": [s.t_s for s in steps],
        "offered": [round(s.offered, 3) for s in steps],
        "achieved": [round(s.achieved, 3) for s in steps],
        "p95": [None if s.p95_s is None else round(s.p95_s, 3) for s in steps],
        "lag": [s.lag for s in steps],
        "move": [s.move.value for s in steps],
    }


def result_of(report: CapacityReport) -> dict[str, Any]:
    """A finished search's result: the sustained rate, whether it held and why, and the p95 latency at it."""
    return {
        "sustained_rate": report.sustained_rate,
        "p95_s": report.p95_at_sustained_s,
        "held": report.verdict.held,
        "reason": report.verdict.reason,
        "summary": report.summary(),
    }


class CapacitySearches:
    """The console's capacity search: at most one at a time, on a thread of its own, watched as it goes."""

    def __init__(self, settings: SimulatorSettings, searcher: Searcher | None = None) -> None:
        self.settings = settings
        self._searcher = searcher or functools.partial(search_capacity, settings)
        self._lock = threading.Lock()
        self._latest: Search | None = None

    def start(self, run: CapacityRun) -> Search:
        """Start a search on its own thread (Problem 409 while one is going)."""
        with self._lock:
            busy = self._latest
            if busy is not None and busy.finished is None:
                detail = f"capacity search {busy.id} is {busy.status}; one at a time"
                raise Problem(409, "Conflict", detail, search=busy.id)
            search_id = uuid.uuid4().hex[:12]
            search = Search(search_id, run, self.settings.runs_dir / f"capacity-{search_id}", time.time())
            search.rate = run.start_rate
            search.thread = threading.Thread(target=self._run, args=(search,), name=search.out_dir.name, daemon=True)
            self._latest = search
        log.info("console capacity search %s: %s", search.id, run.model_dump_json())
        search.thread.start()
        return search

    def _run(self, search: Search) -> None:
        try:
            watch = functools.partial(self._watch, search)
            search.report = self._searcher(search.run, search.out_dir, search.stop, watch)
        except Exception as exc:  # the search's outcome is shown on the page, never lost
            log.exception("capacity search %s failed", search.id)
            search.error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            search.finished = time.time()

    def _watch(self, search: Search, controller: CapacitySearch) -> None:
        with self._lock:
            search.steps.extend(controller.steps[len(search.steps) :])
            search.rate = controller.rate

    def stop(self) -> Search:
        """Ask the running search to stop (Problem 409 when none is running); it ends within its interval."""
        with self._lock:
            search = self._latest
            if search is None or search.finished is not None:
                raise Problem(409, "Conflict", "no capacity search is running")
            search.stop.set()
            return search

    def close(self, timeout_s: float = STOP_WAIT_S) -> None:
        """Stop a running search and wait for it to end (at shutdown)."""
        search = self._latest
        if search is None or search.thread is None:
            return
        search.stop.set()
        search.thread.join(timeout_s)

    def running(self) -> Search | None:
        """The search under way (running or stopping), else None."""
        search = self._latest
        return search if search is not None and search.finished is None else None

    def latest(self) -> Search | None:
        """The running search, else the last one that ended."""
        return self._latest

    def view(self) -> dict[str, Any]:
        """The latest search as the page and the stream show it."""
        with self._lock:
            search = self._latest
            if search is None:
                return {"status": "idle"}
            steps = list(search.steps)
            end = search.finished or time.time()
            last = steps[-1] if steps else None
            return {
                "id": search.id,
                "status": search.status,
                "move": search.move.value,
                "rate": round(search.rate, 3),
                "interval_s": search.run.interval_s,
                "elapsed_s": round(end - search.started, 1),
                "max_duration_s": search.run.max_duration_s,
                "kinds": list(search.run.kinds),
                "workers": search.run.workers,
                "intervals": len(steps),
                "last": None if last is None else last.model_dump(mode="json"),
                "series": series(steps),
                "result": None if search.report is None else result_of(search.report),
                "error": search.error,
                "has_plot": search.report is not None and (search.out_dir / "capacity.png").is_file(),
            }


def searches_of(request: Request) -> CapacitySearches:
    """The app's capacity searches."""
    searches: CapacitySearches = request.app.state.console_capacity
    return searches


Searches = Annotated[CapacitySearches, Depends(searches_of)]


Acts = [admin_only("starting or stopping a capacity search needs"), CsrfChecked]


def parse_run(form: dict[str, Any]) -> ConsoleCapacityRun:
    """The search a form describes (kinds ticked, numbers as typed); Problem 422 naming each wrong field."""
    data: dict[str, Any] = {name: form[name] for name in FORM_FIELDS if str(form.get(name, "")).strip()}
    data["kinds"] = form.get("kinds") or []
    try:
        return ConsoleCapacityRun.model_validate(data)
    except ValidationError as exc:
        errors = error_fields(exc.errors(), data)
        fields = ", ".join(e["field"] for e in errors)
        raise Problem(422, "Invalid capacity search", f"invalid fields: {fields}", errors=errors) from exc


@router.get("/console/capacity")
def capacity_page(request: Request, viewer: PageViewer, searches: Searches) -> HTMLResponse:
    """The capacity search: the form that starts one, the running one live, the last one's result and plot."""
    defaults = ConsoleCapacityRun()
    return render(
        request,
        "capacity.html",
        view=searches.view(),
        defaults=defaults,
        kinds=KINDS,
        max_duration_s=MAX_CONSOLE_DURATION_S,
        min_interval_s=MIN_CONSOLE_INTERVAL_S,
        max_workers=MAX_CONSOLE_WORKERS,
        admin=SIMULATOR_ADMIN in viewer.key.scopes,
    )


@router.get("/console/capacity/state")
def capacity_state(viewer: ApiViewer, searches: Searches) -> dict[str, Any]:
    """The latest search as JSON: status, move, rates, latency and lag per interval, and the result once ended."""
    return searches.view()


@router.post("/console/capacity", dependencies=Acts)
async def start_search(request: Request, searches: Searches) -> RedirectResponse:
    """Start a capacity search (409 while one, or a scenario run, is going: both would load the same system)."""
    form = await request.form()
    values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str) and k != "kinds"}
    values["kinds"] = [v for v in form.getlist("kinds") if isinstance(v, str)]
    run = parse_run(values)
    manager = getattr(request.app.state, "runs", None)
    if manager is None:
        searches.start(run)
    else:
        # On a thread: a run being started holds the manager's lock through its preflight.
        await asyncio.to_thread(manager.start_beside, lambda: searches.start(run), "a capacity search")
    return RedirectResponse("/console/capacity", status_code=303)


@router.post("/console/capacity/stop", dependencies=Acts)
def stop_search(searches: Searches) -> RedirectResponse:
    """Stop the running search: it ends within its current interval with the best flat rate so far, not held."""
    searches.stop()
    return RedirectResponse("/console/capacity", status_code=303)


def _finished_file(searches: CapacitySearches, search_id: str, name: str) -> Path:
    search = searches.latest()
    if search is None or search.id != search_id:
        raise Problem(404, "Not Found", f"no capacity search {search_id} in this console")
    path = search.out_dir / name
    if search.report is None or not path.is_file():
        raise Problem(409, "Conflict", f"capacity search {search_id} is {search.status}: no {name}")
    return path


@router.get("/console/capacity/{search_id}/capacity.png")
def capacity_plot(viewer: ApiViewer, searches: Searches, search_id: str) -> FileResponse:
    """The finished search's plot: offered rate, achieved rate and p95 latency over time."""
    return FileResponse(_finished_file(searches, search_id, "capacity.png"), media_type="image/png")


@router.get("/console/capacity/{search_id}/capacity.html")
def capacity_report(viewer: PageViewer, searches: Searches, search_id: str) -> FileResponse:
    """The finished search's report page (summary, plot and every interval)."""
    return FileResponse(_finished_file(searches, search_id, "capacity.html"), media_type="text/html")
