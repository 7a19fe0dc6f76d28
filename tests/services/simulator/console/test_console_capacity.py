"""The console's capacity page on fakes: admin only, CSRF, validated parameters, one search at a time, live
moves, rates, latency and lag, a stop, and the result with its plot. The search itself is the real controller
driven against a queue of known capacity, released one interval at a time by the test."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from simulator.capacity import CapacityReport, CapacityRun, Watch, run_search, write_report
from simulator.console.capacity import CapacitySearches, series
from simulator.domain.capacity import Move, Observation
from simulator.settings import SimulatorSettings

from tests.services.simulator.fakes import FakeSimulation
from tests.support.auth import ADMIN, ADMIN_KEY, RUN_KEY
from tests.support.console import offline_console, offline_settings, page_csrf_token, post_form, sign_in
from tests.support.effects import wait_until

GATE_TIMEOUT_S = 10.0


class GatedQueue:
    """A queue served at `capacity` jobs/s whose intervals end only when the test releases them (or on a stop)."""

    def __init__(self, capacity: float, permits: threading.Semaphore, stop: threading.Event) -> None:
        self.capacity = capacity
        self.permits = permits
        self.stop = stop
        self.backlog = 0.0

    def interval(self, rate: float, seconds: float) -> Observation:
        deadline = time.monotonic() + GATE_TIMEOUT_S
        while not self.permits.acquire(timeout=0.02):
            if self.stop.is_set() or time.monotonic() > deadline:
                break
        self.backlog += rate * seconds
        done = min(self.backlog, self.capacity * seconds)
        self.backlog -= done
        return Observation(rate, done / seconds, 0.1 + self.backlog / self.capacity, round(self.backlog))


@dataclass
class FakeSearcher:
    """search_capacity's stand-in: the real controller and report writer against a GatedQueue."""

    capacity: float = 12.0
    permits: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    runs: list[CapacityRun] = field(default_factory=list)
    fail: str | None = None

    def __call__(self, run: CapacityRun, out_dir: Path, stop: threading.Event, watch: Watch) -> CapacityReport:
        self.runs.append(run)
        if self.fail is not None:
            raise TimeoutError(self.fail)
        report = run_search(run, GatedQueue(self.capacity, self.permits, stop), stop, watch)
        write_report(report, out_dir)
        return report

    def release(self, intervals: int) -> None:
        """Let `intervals` more intervals end."""
        for _ in range(intervals):
            self.permits.release()


@dataclass
class Page:
    client: TestClient
    searcher: FakeSearcher
    searches: CapacitySearches
    made: list[FakeSimulation]


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    settings = offline_settings(tmp_path)
    searcher = FakeSearcher()
    searches = CapacitySearches(settings, searcher)
    made: list[FakeSimulation] = []
    with offline_console(settings, made, capacity=searches) as client:
        yield Page(client, searcher, searches, made)
        searcher.release(1000)
        for sim in made:
            sim.release.set()


def start(client: TestClient, **fields: Any) -> httpx.Response:
    data: dict[str, Any] = {"kinds": ["training"], "interval_s": "1", "hold_s": "2", "max_duration_s": "120"}
    data.update(fields)
    data["csrf_token"] = page_csrf_token(client, "/console/capacity")
    return client.post("/console/capacity", data=data, follow_redirects=False)


def state(client: TestClient) -> dict[str, Any]:
    answer = client.get("/console/capacity/state")
    assert answer.status_code == 200
    view: dict[str, Any] = answer.json()
    return view


def test_starting_a_search_needs_the_admin_scope_and_a_csrf_token(page: Page) -> None:
    sign_in(page.client, RUN_KEY)
    shown = page.client.get("/console/capacity")
    refused = start(page.client)
    sign_in(page.client, ADMIN_KEY)
    forged = page.client.post("/console/capacity", data={"kinds": "training"}, follow_redirects=False)

    assert shown.status_code == 200 and "you can watch a search, not start or stop one" in shown.text
    assert refused.status_code == 403 and refused.json()["required_scope"] == "simulator:admin"
    assert forged.status_code == 403 and forged.headers["content-type"] == "application/problem+json"
    assert forged.json()["field"] == "csrf_token"
    assert page.searcher.runs == [] and state(page.client) == {"status": "idle"}


@pytest.mark.parametrize(
    ("fields", "wrong"),
    [
        ({"interval_s": "0"}, "interval_s"),
        ({"interval_s": "fast"}, "interval_s"),
        ({"kinds": []}, "kinds"),
        ({"kinds": ["rental"]}, "kinds.0"),
        ({"max_duration_s": "86400"}, "max_duration_s"),
        ({"decrease_factor": "2", "workers": "99"}, "workers"),
        ({"start_rate": "50", "max_rate": "10"}, "body"),
    ],
)
def test_a_search_with_bad_parameters_is_a_422_problem_naming_each_field(
    page: Page, fields: dict[str, Any], wrong: str
) -> None:
    sign_in(page.client)
    refused = start(page.client, **fields)

    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    assert wrong in [e["field"] for e in refused.json()["errors"]], refused.json()
    assert page.searcher.runs == []


def test_the_page_and_the_stream_follow_the_search_interval_by_interval(page: Page) -> None:
    sign_in(page.client)
    started = start(page.client, kinds=["training", "planning"], start_rate="1.5")
    wait_until(lambda: state(page.client)["status"] == "running", 5, "the search to start")
    page.searcher.release(3)
    wait_until(lambda: state(page.client)["intervals"] == 3, 5, "three intervals")
    view = state(page.client)
    html = page.client.get("/console/capacity").text
    with page.client.stream("GET", "/console/stream?capacity=1") as stream:
        data = next(line for line in stream.iter_lines() if line.startswith("data: "))

    assert started.status_code == 303 and started.headers["location"] == "/console/capacity"
    assert page.searcher.runs[0].kinds == ("training", "planning") and page.searcher.runs[0].start_rate == 1.5
    assert (view["move"], view["rate"]) == ("slow start", 12.0)
    assert view["series"]["offered"] == [1.5, 3.0, 6.0]
    assert view["series"]["move"] == ["slow start"] * 3
    assert view["last"]["achieved"] == 6.0 and view["last"]["lag"] == 0 and view["last"]["p95_s"] == 0.1
    assert view["result"] is None
    assert 'data-cap="status">running<' in html and 'id="capacity-stop"' in html and "capacity-form" not in html
    assert json.loads(data.removeprefix("data: "))["capacity"]["intervals"] == 3


def test_a_second_search_while_one_runs_is_a_409_problem(page: Page) -> None:
    sign_in(page.client)
    assert start(page.client).status_code == 303
    wait_until(lambda: state(page.client)["status"] == "running", 5, "the search to start")

    second = start(page.client, kinds=["planning"])

    assert second.status_code == 409 and second.headers["content-type"] == "application/problem+json"
    assert "one at a time" in second.json()["detail"] and second.json()["search"] == state(page.client)["id"]
    assert len(page.searcher.runs) == 1


def test_a_search_is_refused_while_a_scenario_run_loads_the_system(page: Page) -> None:
    sign_in(page.client)
    assert post_form(page.client, "/console/chaos/runs", {"builtin": "demo"}, follow_redirects=False).status_code == 303

    refused = start(page.client)

    assert refused.status_code == 409 and refused.json()["run"] == page.made[0].run_id
    assert page.searcher.runs == []


def test_a_scenario_run_is_refused_while_a_search_loads_the_system(page: Page) -> None:
    """The other way round too: both would load the same system, and each would misread the other's load."""
    sign_in(page.client)
    assert start(page.client).status_code == 303
    wait_until(lambda: state(page.client)["status"] == "running", 5, "the search to start")

    refused = post_form(page.client, "/console/chaos/runs", {"builtin": "demo"}, follow_redirects=False)

    assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["search"] == state(page.client)["id"] and "loading the system" in refused.json()["detail"]
    assert page.made == []


def test_a_search_started_during_a_runs_preflight_waits_for_it_and_is_refused(
    page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's start holds the manager's lock until the run is registered: a search cannot slip in meanwhile."""
    preflight, proceed = threading.Event(), threading.Event()

    def slow_prepare(_self: FakeSimulation) -> None:
        preflight.set()
        proceed.wait(GATE_TIMEOUT_S)

    monkeypatch.setattr(FakeSimulation, "prepare", slow_prepare)
    sign_in(page.client)
    token = page_csrf_token(page.client, "/console/capacity")
    form = {"kinds": ["training"], "interval_s": "1", "max_duration_s": "120", "csrf_token": token}
    answers: list[httpx.Response] = []
    # Through the API, whose route runs on the thread pool beside the console's.
    run = threading.Thread(
        target=lambda: page.client.post("/runs", json={"builtin": "demo"}, headers=ADMIN), daemon=True
    )
    run.start()
    assert preflight.wait(GATE_TIMEOUT_S), "the run's preflight to begin"
    search = threading.Thread(
        target=lambda: answers.append(page.client.post("/console/capacity", data=form, follow_redirects=False)),
        daemon=True,
    )
    search.start()
    # Long enough for the search's request to reach the manager's lock on a loaded host.
    time.sleep(1.0)
    proceed.set()
    run.join(GATE_TIMEOUT_S)
    search.join(GATE_TIMEOUT_S)

    assert [a.status_code for a in answers] == [409] and answers[0].json()["run"] == page.made[0].run_id
    assert page.searcher.runs == []


def test_stopping_ends_the_search_within_its_interval_with_the_best_flat_rate_unheld(page: Page) -> None:
    sign_in(page.client)
    assert start(page.client).status_code == 303
    page.searcher.release(2)
    wait_until(lambda: state(page.client).get("intervals") == 2, 5, "two intervals")

    stopped = post_form(page.client, "/console/capacity/stop", {}, follow_redirects=False)
    wait_until(lambda: state(page.client)["status"] == "done", 10, "the search to end")
    again = post_form(page.client, "/console/capacity/stop", {}, follow_redirects=False)
    view = state(page.client)

    assert stopped.status_code == 303
    assert view["intervals"] == 2 and view["move"] == "done"
    assert view["result"]["held"] is False and view["result"]["sustained_rate"] == 2.0
    assert view["result"]["reason"] == "stopped before a rate held"
    assert again.status_code == 409 and again.json()["detail"] == "no capacity search is running"


def test_a_finished_search_shows_the_sustained_rate_the_latency_at_it_and_its_plot(page: Page) -> None:
    sign_in(page.client)
    assert start(page.client).status_code == 303
    page.searcher.release(200)
    wait_until(lambda: state(page.client)["status"] == "done", 20, "the search to end")
    view = state(page.client)
    html = page.client.get("/console/capacity").text
    plot = page.client.get(f"/console/capacity/{view['id']}/capacity.png")
    report = page.client.get(f"/console/capacity/{view['id']}/capacity.html")
    other = page.client.get("/console/capacity/000000000000/capacity.png")

    result = view["result"]
    assert result["held"] is True and 0.7 * 12 <= result["sustained_rate"] <= 12
    assert result["p95_s"] is not None and result["p95_s"] < 1.0
    moves = set(view["series"]["move"])
    assert {"slow start", "multiplicative decrease", "additive increase", "hold", "done"} <= moves
    assert f'data-result="sustained_rate">{result["sustained_rate"]:.2f}<' in html
    assert 'data-result="held">yes<' in html and "data-capacity-plot" in html and 'id="capacity-form"' in html
    assert plot.status_code == 200 and plot.content.startswith(b"\x89PNG")
    assert report.status_code == 200 and result["summary"] in report.text
    assert other.status_code == 404 and other.headers["content-type"] == "application/problem+json"


def test_a_search_that_cannot_run_is_shown_failed_and_another_may_start(page: Page) -> None:
    sign_in(page.client)
    page.searcher.fail = "the managed workers did not join"
    assert start(page.client).status_code == 303
    wait_until(lambda: state(page.client)["status"] == "failed", 5, "the search to fail")
    html = page.client.get("/console/capacity").text
    missing = page.client.get(f"/console/capacity/{state(page.client)['id']}/capacity.png")
    page.searcher.fail = None

    again = start(page.client)

    assert "TimeoutError: the managed workers did not join" in html and "data-capacity-error" in html
    assert missing.status_code == 409
    assert again.status_code == 303 and len(page.searcher.runs) == 2


def test_shutting_the_console_down_stops_a_running_search(tmp_path: Path) -> None:
    settings = SimulatorSettings(runs_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1")
    searcher = FakeSearcher()
    searches = CapacitySearches(settings, searcher)
    search = searches.start(CapacityRun(interval_s=1, max_duration_s=600))
    wait_until(lambda: searcher.runs != [], 5, "the search to start")

    searches.close(timeout_s=10)

    assert search.status == "done" and search.report is not None
    assert search.report.verdict.reason == "stopped before a rate held"


def test_the_series_carry_each_intervals_figures_and_move() -> None:
    queue = GatedQueue(100, threading.Semaphore(99), threading.Event())
    report = run_search(CapacityRun(interval_s=2, hold_s=2, max_rate=4), queue)
    out = series(report.steps)
    assert out["t"] == [2.0, 4.0, 6.0, 8.0]
    assert out["offered"] == [1.0, 2.0, 4.0, 4.0]
    assert out["move"] == [Move.SLOW_START, Move.SLOW_START, Move.HOLD, Move.DONE]
    assert out["lag"] == [0, 0, 0, 0] and out["p95"] == [0.1] * 4
