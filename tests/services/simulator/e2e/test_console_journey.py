"""The console in a real browser (Debian's Chromium under Playwright) against real servers: the training and
planning APIs as their own processes, workers of both kinds the console's chaos panel starts, the simulator
serving the console.

One journey: sign in, start the workers, submit a training job and see its progress reach 100 % and its plot;
submit a planning job and see it succeed and its path drawn in 3-D; replay a dead letter; SIGKILL the training
worker from the chaos panel while jobs run and see the live audit settle at 0 lost and 0 doubled, the kill
marked on its charts; run a short capacity search and see its intervals charted, then its sustained rate and plot.
Screenshots of each step are kept in a temporary directory named in the output.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from quartet_shared.auth import bearer_headers
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings
from simulator.api import create_api
from simulator.console.chaos import Chaos
from simulator.settings import SimulatorSettings

from tests.support.auth import ADMIN_KEY
from tests.support.jobs import service_process
from tests.support.served import Served
from tests.support.servers import Servers

pytestmark = [pytest.mark.integration, pytest.mark.fault]

SMALL_JOB = {
    "model": {"kind": "linear"},
    "optimizer": {"kind": "gd", "lr": 0.1},
    "epochs": 20,
    "data": {"kind": "generator", "generator": {"name": "linear", "n_samples": 120, "n_features": 3}},
}


@dataclass(frozen=True)
class Stack:
    """The console's and the training API's base URLs."""

    console: str
    training: str


@pytest.fixture
def stack(servers: Servers, settings: KernelSettings, unique: str, tmp_path: Path) -> Iterator[Stack]:
    """The training and planning APIs (projectors included) as processes, and the simulator's console in this
    process."""
    env = {"DATABASE_URL": settings.database_url or ""}
    with (
        service_process(
            "training-worker", "TRAINING_", settings, unique, tmp_path / "training", env, role="api"
        ) as api,
        service_process(
            "path-planner", "PLANNER_", settings, unique, tmp_path / "planning", env, role="api"
        ) as planner,
    ):
        nowhere = "http://127.0.0.1:1"
        cfg = SimulatorSettings(
            **(settings.model_dump() | {"topic_partitions": 3}),
            topic_prefix=f"p{unique}.",
            runs_dir=tmp_path / "runs",
            infra="none",
            training_url=api.base,
            planner_url=planner.base,
            rental_url=nowhere,
        )
        # The chaos panel may restart these servers; this journey only SIGKILLs workers.
        app = create_api(cfg, chaos=Chaos(cfg, servers=servers))
        with Served(app) as served:
            yield Stack(served.url, api.base)


@pytest.fixture
def shots() -> Path:
    """Where this journey's screenshots are kept."""
    folder = Path(tempfile.mkdtemp(prefix="console-e2e-shots-"))
    print(f"console screenshots in {folder}")
    return folder


def reload_until(page: Page, path: str, done: Callable[[], bool], timeout_s: int = 60) -> None:
    """Open `path` once a second until `done()` holds on it (pages without a live part need a reload)."""
    for _ in range(timeout_s):
        page.goto(path)
        if done():
            return
        page.wait_for_timeout(1000)
    raise AssertionError(f"{path} never showed what was expected within {timeout_s} s")


def kpi(page: Page, name: str) -> str:
    return page.locator(f'[data-value="{name}"]').first.inner_text()


def sign_in_and_start_a_worker(page: Page, shots: Path) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r".*/console/login$"))
    page.fill('input[name="api_key"]', ADMIN_KEY)
    page.click('button[type="submit"]')
    expect(page.locator("#live-state")).to_have_text("live", timeout=20_000)
    # The live audit counts what it sees from the moment it starts collecting.
    expect(page.locator("#since")).to_contain_text("UTC", timeout=60_000)
    page.goto("/console/chaos")
    page.fill('#workers-form input[name="training"]', "1")
    page.fill('#workers-form input[name="planning"]', "1")
    page.click('#workers-form button[type="submit"]')
    expect(page.locator("[data-workers]")).to_contain_text("training: 1 alive")
    expect(page.locator("[data-workers]")).to_contain_text("planning: 1 alive")
    page.screenshot(path=str(shots / "1-chaos-worker-started.png"), full_page=True)


def submit_a_training_job(page: Page, shots: Path) -> None:
    page.goto("/")
    page.select_option("#kind", "training")
    page.click('#submit-form button[type="submit"]')
    job = page.locator("#job")
    expect(job).to_be_visible()
    # The page follows the job over the stream and reloads once it finished.
    expect(page.locator("[data-status-badge]")).to_have_text("succeeded", timeout=180_000)
    expect(page.locator("#job [data-percent]")).to_have_text("100 %")
    plot = page.locator("img[data-plot]").first
    expect(plot).to_be_visible()
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    page.screenshot(path=str(shots / "2-job-succeeded.png"), full_page=True)


def submit_a_planning_job(page: Page, shots: Path) -> None:
    page.goto("/")
    # Choosing the kind puts the bundled example plan (two hills, one threat) in the form.
    page.select_option("#kind", "planning")
    expect(page.locator("#spec")).to_have_value(re.compile("small-peaks"))
    page.click('#submit-form button[type="submit"]')
    expect(page.locator("#job")).to_have_attribute("data-kind", "planning")
    expect(page.locator("[data-status-badge]")).to_have_text("succeeded", timeout=180_000)
    view = page.locator("#plan3d")
    expect(view).to_have_attribute("data-drawn", "true", timeout=60_000)
    expect(view.locator("canvas").first).to_be_visible()
    expect(page.get_by_text("The terrain is not drawn")).to_have_count(0)
    page.screenshot(path=str(shots / "3-plan-in-3d.png"), full_page=True)


def replay_a_dead_letter(page: Page, settings: KernelSettings, unique: str, shots: Path) -> None:
    topic = f"p{unique}.training.jobs"
    producer = Producer(settings)
    try:
        producer.send_raw(topic, b"garbage-1", b"\xff not an event", [])
        producer.flush()
    finally:
        producer.close()
    dlq = page.locator(f'[data-dlq="{topic}.dlq"]')
    reload_until(page, "/console/dead-letters", lambda: dlq.locator("[data-count]").inner_text() == "1")
    expect(dlq.locator("[data-original]").first).to_contain_text(topic)
    dlq.locator('button[type="submit"]').click()
    expect(page.locator('[data-flash="replayed"]')).to_contain_text(f"Replayed 1 from {topic}.dlq")
    page.screenshot(path=str(shots / "4-dead-letter-replayed.png"), full_page=True)


def sigkill_while_jobs_run(page: Page, api_base: str, shots: Path) -> None:
    with httpx.Client(base_url=api_base, headers=bearer_headers(ADMIN_KEY), timeout=30) as client:
        for seed in range(8):
            assert client.post("/jobs", json={**SMALL_JOB, "seed": seed}).status_code == 202
    page.goto("/console/chaos")
    page.select_option('#kill-form select[name="target"]', "training")
    page.click('[data-action="kill"]')
    killed = page.locator('[data-fault="kill_worker"][data-ok="True"]')
    reload_until(page, "/console/chaos", lambda: killed.count() == 1)
    page.screenshot(path=str(shots / "5-worker-killed.png"), full_page=True)
    page.goto("/")
    expect(page.locator('[data-value="in_flight"]')).to_have_text("0", timeout=240_000)
    assert (kpi(page, "lost"), kpi(page, "doubled")) == ("0", "0")
    assert kpi(page, "accepted") == kpi(page, "completed") == "10"
    # The charts drew the jobs and mark the SIGKILL, named, on each of them.
    expect(page.locator("#charts")).to_have_attribute("data-faults", "1")
    expect(page.locator("#chart-throughput .annotation-text").first).to_contain_text("kill worker")
    expect(page.locator("#chart-lag .annotation-text").first).to_contain_text("kill worker")
    assert int(page.locator("#charts").get_attribute("data-points") or 0) > 0
    page.screenshot(path=str(shots / "6-audit-after-sigkill.png"), full_page=True)


def search_the_capacity(page: Page, shots: Path) -> None:
    page.goto("/console/capacity")
    form = page.locator("#capacity-form")
    form.locator('input[name="kinds"][value="planning"]').uncheck()
    fields = {"interval_s": "1", "hold_s": "1", "start_rate": "1", "max_rate": "2", "max_duration_s": "30"}
    for name, value in fields.items():
        form.locator(f'input[name="{name}"]').fill(value)
    form.locator('button[type="submit"]').click()
    # Each interval reaches the page over the stream; the page reloads itself once the search ended.
    expect(page.locator("#capacity")).to_have_attribute("data-points", re.compile(r"^[1-9]"), timeout=60_000)
    page.screenshot(path=str(shots / "7-capacity-search.png"), full_page=True)
    rate = page.locator('[data-result="sustained_rate"]')
    expect(rate).to_have_text(re.compile(r"^\d+\.\d\d$"), timeout=120_000)
    assert float(rate.inner_text()) > 0
    plot = page.locator("img[data-capacity-plot]")
    expect(plot).to_be_visible()
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    page.screenshot(path=str(shots / "8-capacity-result.png"), full_page=True)


def test_a_person_submits_a_job_replays_a_dead_letter_and_kills_a_worker_without_losing_anything(
    chromium: Browser, stack: Stack, settings: KernelSettings, unique: str, shots: Path
) -> None:
    context = chromium.new_context(base_url=stack.console, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        sign_in_and_start_a_worker(page, shots)
        submit_a_training_job(page, shots)
        submit_a_planning_job(page, shots)
        replay_a_dead_letter(page, settings, unique, shots)
        sigkill_while_jobs_run(page, stack.training, shots)
        search_the_capacity(page, shots)
    except Exception:
        page.screenshot(path=str(shots / "failed.png"), full_page=True)
        raise
    finally:
        context.close()
