"""The console's pages and its event stream: server-rendered HTML, updated live over Server-Sent Events.

A browser signs in once with an API key; the key lives in an HttpOnly, SameSite=Strict cookie (so no other
site can make the browser use it) and is checked against the service's keys on every request; every form that
changes something also carries a CSRF token bound to that cookie (`csrf`). Job pages call the job services with
that same key, so each service still decides what its caller may do.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.templating import Jinja2Templates
from quartet_shared.auth import SIMULATOR_ADMIN, SIMULATOR_RUN, ApiKey, ApiKeys
from quartet_shared.http import Problem
from quartet_shared.safe_yaml import safe_load

from simulator.console.csrf import COOKIE, Checked, check_origin, page_token
from simulator.console.feed import LiveFeed
from simulator.console.jobs import JobServices
from simulator.console.model import JobRow, newest_first, problem_text, result_facts
from simulator.console.plan3d import plan_figure
from simulator.console.timeline import FaultMark, run_marks
from simulator.scenario_io import BUNDLED_DIR

HERE = Path(__file__).resolve().parent
PLOTLY_JS = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
NAV = [
    ("/", "Live audit"),
    ("/console/topology", "Topology"),
    ("/console/dead-letters", "Dead letters"),
    ("/console/chaos", "Chaos"),
    ("/console/capacity", "Capacity"),
]
AUDIT_FIELDS = [
    ("accepted", "Accepted"),
    ("completed", "Completed"),
    ("failed", "Failed"),
    ("in_flight", "In flight"),
    ("lost", "Lost"),
    ("doubled", "Doubled"),
    ("dead_lettered", "Dead-lettered"),
]
EXAMPLES = {"training": "training-linear.yaml", "planning": "planning-peaks.yaml"}
RECENT = 20
RUN_MARKS = 100
STREAM_PERIOD_S = 1.0
# The browser's EventSource reconnects by itself; ending each stream bounds what one connection holds.
STREAM_LIFETIME_S = 600.0

templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """A page was asked for without a valid console cookie."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in person: their key's name and scopes, and its secret to call the job services with."""

    key: ApiKey
    secret: str


def _identify(request: Request) -> Viewer | None:
    secret = request.cookies.get(COOKIE)
    keys: ApiKeys | None = getattr(request.app.state, "api_keys", None)
    key = keys.identify(secret) if secret and keys is not None else None
    return Viewer(key, secret) if key is not None and secret else None


def page_viewer(request: Request) -> Viewer:
    """The signed-in viewer of a page; anyone else is sent to the sign-in form."""
    viewer = _identify(request)
    if viewer is None:
        raise LoginRequired
    viewer.key.require(SIMULATOR_RUN, "the console needs")
    return viewer


def api_viewer(request: Request) -> Viewer:
    """The signed-in viewer of a stream or figure; Problem 401 for anyone else."""
    viewer = _identify(request)
    if viewer is None:
        raise Problem(401, "Unauthorized", "sign in to the console at /console/login first")
    viewer.key.require(SIMULATOR_RUN, "the console needs")
    return viewer


def admin_only(why: str) -> Any:
    """A dependency admitting only a signed-in viewer whose key has simulator:admin; `why` says what needs it."""

    def check(request: Request) -> None:
        page_viewer(request).key.require(SIMULATOR_ADMIN, why)

    return Depends(check)


PageViewer = Annotated[Viewer, Depends(page_viewer)]
ApiViewer = Annotated[Viewer, Depends(api_viewer)]


def feed_of(request: Request) -> LiveFeed:
    """The app's live feed."""
    feed: LiveFeed = request.app.state.console_feed
    return feed


def jobs_of(request: Request) -> JobServices:
    """The app's job services client."""
    services: JobServices = request.app.state.console_jobs
    return services


Feed = Annotated[LiveFeed, Depends(feed_of)]
Jobs = Annotated[JobServices, Depends(jobs_of)]


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A console page with the navigation and the feed's notices."""
    feed: LiveFeed = request.app.state.console_feed
    base = {
        "nav": NAV,
        "section": request.url.path,
        "signed_in": True,
        "notices": feed.health.notices,
        "csrf": page_token(request),
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


def examples() -> dict[str, str]:
    """An example spec per kind, from the simulator's bundled job files."""
    return {kind: (BUNDLED_DIR / "jobs" / name).read_text() for kind, name in EXAMPLES.items()}


def fault_marks(request: Request) -> list[FaultMark]:
    """The faults injected from the chaos panel and by this simulator's runs, to mark on the charts."""
    marks: list[FaultMark] = request.app.state.console_chaos.marks()
    manager = getattr(request.app.state, "runs", None)
    if manager is not None:
        runs = [(e.id, *e.simulation.faults_so_far()) for e in list(manager.runs.values()) if e.simulation is not None]
        marks += run_marks(runs, RUN_MARKS)
    return marks


def snapshot(feed: LiveFeed, jobs: JobServices, secret: str, faults: list[FaultMark]) -> dict[str, Any]:
    """The whole live view: the audit and its charts, what is down, the recent jobs, the topology's figures."""
    rows, errors = jobs.recent(secret, RECENT)
    feed.note_job_services(errors)
    topics, groups = feed.topology()
    since = feed.collecting_since
    return {
        "since": time.strftime("%H:%M:%S UTC", time.gmtime(since)) if since is not None else "",
        "audit": feed.audit().as_dict(),
        "chart": feed.chart(faults),
        "notices": feed.health.notices,
        "jobs": [r.as_dict() for r in newest_first(rows, RECENT)],
        "topics": [asdict(t) for t in topics],
        "groups": [asdict(g) for g in groups],
    }


@router.get("/")
def index(request: Request, viewer: PageViewer, feed: Feed, jobs: Jobs) -> HTMLResponse:
    """The live audit, the recent jobs and the submit form."""
    return _index(request, feed, jobs, viewer)


def _index(
    request: Request, feed: LiveFeed, jobs: JobServices, viewer: Viewer, status: int = 200, **form: Any
) -> HTMLResponse:
    view = snapshot(feed, jobs, viewer.secret, fault_marks(request))
    specs = examples()
    return render(
        request,
        "index.html",
        status,
        audit=view["audit"],
        chart=view["chart"],
        tracked_jobs=feed.settings.console_tracked_jobs,
        since=view["since"],
        audit_fields=AUDIT_FIELDS,
        jobs=[JobRow(**row) for row in view["jobs"]],
        examples=specs,
        lost_after_s=feed.settings.console_lost_after_s,
        form_kind=form.get("kind", "training"),
        form_spec=form.get("spec", specs["training"]),
        error=form.get("error"),
    )


@router.get("/console/stream")
async def stream(request: Request, viewer: ApiViewer, feed: Feed, jobs: Jobs) -> StreamingResponse:
    """Server-Sent Events: the whole live view once a second (`?capacity=1` adds the capacity search's)."""
    capacity = request.query_params.get("capacity") == "1"

    async def events() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        end = time.monotonic() + STREAM_LIFETIME_S
        while time.monotonic() < end and not await request.is_disconnected():
            view = await asyncio.to_thread(snapshot, feed, jobs, viewer.secret, fault_marks(request))
            if capacity:
                view["capacity"] = request.app.state.console_capacity.view()
            yield f"data: {json.dumps(view)}\n\n"
            await asyncio.sleep(STREAM_PERIOD_S)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


@router.post("/console/jobs")
def submit(
    request: Request,
    viewer: PageViewer,
    _csrf: Checked,
    feed: Feed,
    jobs: Jobs,
    kind: Annotated[str, Form(max_length=20)],
    spec: Annotated[str, Form(max_length=2_000_000)],
) -> Response:
    """Submit a job to its service with the viewer's key; back to the form with the service's problem if refused."""
    try:
        body = safe_load(spec)
    except Exception as exc:  # the safe loader's errors all say where the text is wrong
        return _index(request, feed, jobs, viewer, 422, kind=kind, spec=spec, error=f"Not YAML: {exc}")
    answer = jobs.submit(kind, body, viewer.secret)
    if answer.status != 202:
        error = f"The {kind} API refused the job ({answer.status}): {problem_text(answer.body)}"
        return _index(request, feed, jobs, viewer, answer.status, kind=kind, spec=spec, error=error)
    return RedirectResponse(f"/console/jobs/{kind}/{answer.body['id']}", status_code=303)


@router.get("/console/jobs/{kind}/{job_id}")
def job_page(request: Request, viewer: PageViewer, feed: Feed, jobs: Jobs, kind: str, job_id: str) -> HTMLResponse:
    """A job's status, progress, problem, headline figures and plots; a plan's path in 3-D."""
    answer = jobs.job(kind, job_id, viewer.secret)
    if answer.status != 200:
        raise Problem(answer.status, str(answer.body.get("title", "Error")), answer.body.get("detail"))
    job = JobRow.of(kind, answer.body)
    facts: list[tuple[str, str]] = []
    plots: list[str] = []
    figure = None
    if job.status == "succeeded":
        result = jobs.result(kind, job_id, viewer.secret)
        if result.status == 200:
            facts = result_facts(result.body)
            plots = [str(p) for p in result.body.get("plots") or []]
            figure = plan_figure(feed.request_of(job_id), result.body) if kind == "planning" else None
    return render(request, "job.html", job=job, facts=facts, plots=plots, figure=figure)


@router.get("/console/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    """plotly.js as the `plotly` package ships it: served from here, since no CDN may be reachable."""
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/console/vendor/plotly-LICENSE.txt")
def plotly_licence() -> Response:
    """plotly's licence (MIT), which travels with the file served above."""
    text = next((f.read_text() for f in metadata.files("plotly") or [] if f.name.startswith("LICENSE")), "MIT")
    return Response(text, media_type="text/plain")


@router.get("/console/jobs/{kind}/{job_id}/plots/{name}.png")
def plot(viewer: ApiViewer, jobs: Jobs, kind: str, job_id: str, name: str) -> Response:
    """One of a job's figures, fetched from its service with the viewer's key."""
    upstream = jobs.plot(kind, job_id, name, viewer.secret)
    if upstream.status_code != 200:
        raise Problem(upstream.status_code, "Figure unavailable", f"the {kind} API answered {upstream.status_code}")
    return Response(upstream.content, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/console/login")
def login_form(request: Request) -> HTMLResponse:
    """The sign-in form."""
    return templates.TemplateResponse(request, "login.html", {"nav": [], "signed_in": False, "notices": []})


@router.post("/console/login", dependencies=[Depends(check_origin)])
def login(request: Request, api_key: Annotated[str, Form(max_length=500)]) -> Response:
    """Check the key and keep it in the console cookie; the form again (401) when it is not a key."""
    keys: ApiKeys | None = getattr(request.app.state, "api_keys", None)
    key = keys.identify(api_key) if keys is not None else None
    if key is None or SIMULATOR_RUN not in key.scopes:
        context = {"nav": [], "signed_in": False, "notices": [], "error": "That is not a key with simulator:run."}
        return templates.TemplateResponse(request, "login.html", context, status_code=401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, api_key, httponly=True, samesite="strict", path="/")
    return response


@router.post("/console/logout")
def logout(_csrf: Checked) -> Response:
    """Forget the console cookie."""
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
