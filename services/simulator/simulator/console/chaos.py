"""The chaos panel: start a bundled, pasted or uploaded scenario, start workers the console supervises, or inject
one fault now (SIGKILL a worker, restart the broker, stop Redis for N s, add latency to a Kafka node). Every
action needs simulator:admin.

Faults go through the simulator's own FaultInjector, so one injected here is recorded and undone exactly
like one a scenario plans. SIGKILL needs workers under control: the console's own pool (restarted by its
supervisor when killed, like a run's managed workers) or, under Compose, the worker containers. Latency needs
a Kafka cluster under control, with a fault proxy (Toxiproxy) in front of each node: natively, or Compose's
`cluster` profile.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from pydantic import Field, TypeAdapter, ValidationError
from quartet_shared.auth import SIMULATOR_ADMIN
from quartet_shared.http import Problem

from simulator.bootstrap import bundled_scenarios
from simulator.cluster import ClusterControl, ClusterFaults
from simulator.console.csrf import CsrfChecked
from simulator.console.timeline import FaultMark, fault_name
from simulator.console.views import PageViewer, admin_only, page_viewer, render
from simulator.domain.plan import PlannedFault
from simulator.domain.report import FaultRecord
from simulator.domain.scenario import (
    BrokerRestartFault,
    KillWorkerFault,
    LatencyFault,
    RedisOutageFault,
    Scenario,
    WorkerPool,
)
from simulator.faults import FaultInjector
from simulator.run_request import RunCreate, admin_reason, requested_scenario
from simulator.scenario_io import ScenarioError, ScenarioProblem, parse_scenario
from simulator.servers import ServerControl
from simulator.settings import SimulatorSettings
from simulator.workers import NativeWorkers, WorkerControl, worker_command

if TYPE_CHECKING:
    from simulator.api import RunManager

log = logging.getLogger(__name__)

Fault = KillWorkerFault | BrokerRestartFault | RedisOutageFault | LatencyFault
FAULT: TypeAdapter[Fault] = TypeAdapter(Annotated[Fault, Field(discriminator="kind")])
# The form fields each fault the panel injects takes; the fault's model validates them.
FAULT_FIELDS = {
    "kill_worker": ("target",),
    "broker_restart": ("down_s",),
    "redis_outage": ("down_s",),
    "latency": ("node", "ms", "jitter_ms", "duration_s"),
}
MAX_CONSOLE_WORKERS = 8
MAX_MARKS = 100
MAX_SCENARIO_BYTES = 2_000_000
NO_PROXIES = (
    "Latency needs a Kafka cluster under the simulator's control: a fault proxy (Toxiproxy) in front of each node, "
    "as make up KAFKA_NODES=3 puts there (SIMULATOR_CLUSTER_STATE names it), or Compose's cluster profile; "
    "this simulator controls no such cluster"
)

router = APIRouter(include_in_schema=False)


@dataclass
class Chaos:
    """The servers' control, the workers under control, and the faults injected from the console."""

    settings: SimulatorSettings
    servers: ServerControl | None = None
    workers: WorkerControl | None = None
    cluster: ClusterControl | None = None
    native: NativeWorkers | None = None
    injector: FaultInjector = field(default_factory=lambda: FaultInjector(None, None))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _count: int = 0
    _marks: deque[FaultMark] = field(default_factory=lambda: deque(maxlen=MAX_MARKS))

    def __post_init__(self) -> None:
        proxied = ClusterFaults.of(self.cluster, self.settings) if self.cluster is not None else None
        self.injector = FaultInjector(self.servers, self.workers, proxied, on_recorded=self._ended)

    @property
    def latency_unavailable(self) -> str | None:
        """Why the panel cannot add latency here, or None when it can."""
        if self.cluster is None:
            return f"{NO_PROXIES} (the single broker that make up starts has none)."
        return None

    def start_workers(self, counts: dict[str, int]) -> None:
        """Start the console's own supervised workers (Problem 409 while they run)."""
        wanted = {kind: n for kind, n in counts.items() if n > 0}
        with self._lock:
            if self.native is not None:
                raise Problem(409, "Conflict", "the console's workers are running; stop them first")
            if not wanted:
                raise Problem(422, "Invalid request", "ask for at least one worker")
            pools = {kind: WorkerPool(count=n, render_plots=True) for kind, n in wanted.items()}
            commands = {kind: worker_command(self.settings, kind, pool) for kind, pool in pools.items()}
            native = NativeWorkers(commands, wanted, self.settings.runs_dir / "console-workers")
            native.start()
            self.native = native
            self.injector.workers = native

    def stop_workers(self) -> None:
        """Stop the console's own workers (within the contract's 30 s each)."""
        with self._lock:
            native, self.native = self.native, None
            self.injector.workers = self.workers
        if native is not None:
            native.stop(timeout_s=25)

    def inject(self, fault: Fault) -> None:
        """Inject `fault` now, on a thread of its own; it undoes itself (Problem 409 for latency without proxies)."""
        if isinstance(fault, LatencyFault) and (why := self.latency_unavailable) is not None:
            raise Problem(409, "Conflict", why)
        with self._lock:
            self._count += 1
            index = self._count
            self._marks.append(FaultMark(fault_name(fault.kind, getattr(fault, "target", None)), time.time()))
        self.injector.start(PlannedFault(index=index, at_s=0.0, fault=fault, pick=random.random()))

    def _ended(self, record: FaultRecord) -> None:
        name = fault_name(record.kind, record.target)
        with self._lock:
            at = next((i for i, m in enumerate(self._marks) if m.name == name and m.end is None), None)
            if at is not None:
                self._marks[at] = replace(
                    self._marks[at], end=max(record.end_s or 0.0, self._marks[at].start), ok=record.ok
                )

    def marks(self) -> list[FaultMark]:
        """The faults injected here, newest `MAX_MARKS`, as the charts mark them (an ongoing one has no end)."""
        with self._lock:
            return list(self._marks)

    def workers_alive(self) -> dict[str, int]:
        """Live console workers per kind."""
        native = self.native
        return native.alive() if native is not None else {}

    def records(self) -> list[FaultRecord]:
        """The faults injected from the console, oldest first."""
        return self.injector.records()


def chaos_of(request: Request) -> Chaos:
    """The app's chaos controls."""
    chaos: Chaos = request.app.state.console_chaos
    return chaos


ChaosDep = Annotated[Chaos, Depends(chaos_of)]


def parse_fault(kind: str, form: Mapping[str, str]) -> Fault:
    """The fault a form describes; Problem 422 naming the field when it is not one."""
    data: dict[str, Any] = {"kind": kind, "at_s": 0}
    data.update({name: form[name] for name in FAULT_FIELDS.get(kind, ()) if name in form})
    try:
        return FAULT.validate_python(data)
    except ValidationError as exc:
        errors = [{"field": str(e["loc"][-1]) if e["loc"] else "kind", "message": e["msg"]} for e in exc.errors()]
        raise Problem(422, "Invalid fault", f"not a fault the panel injects: {kind!r}", errors=errors) from exc


Acts = [admin_only("the chaos panel's actions need"), CsrfChecked]


def _runs(request: Request) -> RunManager:
    manager: RunManager = request.app.state.runs
    return manager


@router.get("/console/chaos")
def chaos_page(request: Request, viewer: PageViewer, chaos: ChaosDep) -> HTMLResponse:
    """The chaos panel: the runs, the console's workers, the faults injected, and the forms that act."""
    return _panel(request, chaos)


def _panel(request: Request, chaos: Chaos, status: int = 200, **extra: Any) -> HTMLResponse:
    viewer = page_viewer(request)
    manager = _runs(request)
    runs = sorted(manager.runs.values(), key=lambda e: e.created_at, reverse=True)
    return render(
        request,
        "chaos.html",
        status,
        runs=[e.public("") for e in runs],
        scenarios=sorted(bundled_scenarios()),
        faults=chaos.records(),
        alive=chaos.workers_alive(),
        managed=chaos.native is not None,
        has_servers=chaos.servers is not None,
        has_workers=chaos.injector.workers is not None,
        no_latency=chaos.latency_unavailable,
        admin=SIMULATOR_ADMIN in viewer.key.scopes,
        audit=request.app.state.console_feed.audit(),
        **extra,
    )


@router.post("/console/chaos/faults", dependencies=Acts)
async def inject_fault(
    request: Request, chaos: ChaosDep, kind: Annotated[str, Form(max_length=40)]
) -> RedirectResponse:
    """Inject one fault now: the form's fields for its kind, validated by the fault's own model."""
    form = await request.form()
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    chaos.inject(parse_fault(kind, fields))
    return RedirectResponse("/console/chaos", status_code=303)


@router.post("/console/chaos/workers", dependencies=Acts)
def start_workers(
    chaos: ChaosDep,
    training: Annotated[int, Form(ge=0, le=MAX_CONSOLE_WORKERS)] = 0,
    planning: Annotated[int, Form(ge=0, le=MAX_CONSOLE_WORKERS)] = 0,
) -> RedirectResponse:
    """Start workers the console supervises (a killed one comes back)."""
    chaos.start_workers({"training": training, "planning": planning})
    return RedirectResponse("/console/chaos", status_code=303)


@router.post("/console/chaos/workers/stop", dependencies=Acts)
def stop_workers(chaos: ChaosDep) -> RedirectResponse:
    """Stop the console's workers."""
    chaos.stop_workers()
    return RedirectResponse("/console/chaos", status_code=303)


async def uploaded_text(upload: UploadFile | None) -> tuple[str, str] | None:
    """An uploaded scenario file's name and text, or None when no file was chosen (Problem 413 when too big)."""
    if upload is None or not upload.filename:
        return None
    data = await upload.read(MAX_SCENARIO_BYTES + 1)
    if len(data) > MAX_SCENARIO_BYTES:
        raise Problem(413, "Content Too Large", f"{upload.filename} is over {MAX_SCENARIO_BYTES} bytes")
    try:
        return upload.filename, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        why = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise ScenarioError([ScenarioProblem(upload.filename, None, None, "", why)]) from exc


def chosen_scenario(builtin: str, pasted: str, uploaded: tuple[str, str] | None, scenario_dir: Path) -> Scenario:
    """The uploaded scenario, else the pasted one, else the bundled one named; Problem 422 listing each mistake."""
    if uploaded is None:
        body = RunCreate(scenario_yaml=pasted) if pasted.strip() else RunCreate(builtin=builtin)
        return requested_scenario(body, scenario_dir)
    try:
        return parse_scenario(uploaded[1], uploaded[0], scenario_dir)
    except ScenarioError as exc:
        errors = [p.as_dict() for p in exc.problems]
        raise Problem(422, "Invalid scenario", str(exc), errors=errors) from exc


@router.post("/console/chaos/runs", dependencies=Acts)
async def start_run(
    request: Request,
    chaos: ChaosDep,
    builtin: Annotated[str, Form(max_length=100)] = "",
    scenario_yaml: Annotated[str, Form(max_length=MAX_SCENARIO_BYTES)] = "",
    scenario_file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Start an uploaded scenario file, pasted scenario YAML, or a bundled scenario; the panel again (422) listing
    each mistake by file, line and field when it is not a scenario."""
    manager = _runs(request)
    try:
        scenario = chosen_scenario(
            builtin, scenario_yaml, await uploaded_text(scenario_file), manager.settings.scenario_dir
        )
    except ScenarioError as exc:
        return _panel(request, chaos, 422, scenario_errors=[p.as_dict() for p in exc.problems])
    except Problem as exc:
        if exc.status != 422:
            raise
        return _panel(request, chaos, 422, scenario_errors=exc.extensions.get("errors") or [{"message": str(exc)}])
    log.info("console run %s (%s)", scenario.name, admin_reason(scenario) or "no faults")
    manager.start(scenario)
    return RedirectResponse("/console/chaos", status_code=303)


@router.get("/console/runs/{run_id}/report.html")
def run_report(request: Request, viewer: PageViewer, run_id: str) -> Response:
    """A finished run's report page, for a signed-in browser."""
    manager = _runs(request)
    entry = manager.get(run_id)
    if entry is None:
        raise Problem(404, "Not Found", f"no run {run_id}")
    return FileResponse(manager.report_page(entry), media_type="text/html")
