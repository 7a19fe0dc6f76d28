"""`docker compose up` end to end, as a user runs it: from the images `make images` builds, `up -d --wait` brings
Kafka, Redis, PostgreSQL, topic creation, migrations and every API and worker (each its own container) to
healthy; then, through the published ports only, jobs and a rental journey complete, a worker SIGKILLed mid-job
and a broker restarted while jobs are accepted lose and double nothing, a malformed setting is named, and
`down -v` leaves nothing behind.

Its own Compose project (`quartet-e2e-<random>`), free host ports on 127.0.0.1 and secrets generated into a
temporary .env, so a running stack is untouched. The tests share one stack and run in file order; the last one
takes it down. Needs a Docker engine: deselected where none answers, a failure on CI (tests/deploy/conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from quartet_shared.jobservice import JobTopics
from quartet_shared.settings import KernelSettings
from simulator.rental import RentalApi

from tests.deploy.conftest import REPO
from tests.support.auth import ADMIN
from tests.support.cli import quartet
from tests.support.compose_stack import ComposeStack, client_env
from tests.support.effects import wait_until
from tests.support.jobs import committed_events
from tests.support.publish import run_publish_section

pytestmark = [pytest.mark.docker, pytest.mark.integration]

SCENARIOS = REPO / "services" / "path-planner" / "scenarios"
# Each API and worker in its own container, and the one-shot steps that must have finished.
LONG_RUNNING = {
    "kafka",
    "redis",
    "postgres",
    "training-api",
    "training-worker",
    "planner-api",
    "planner-worker",
    "rental-api",
    "rental-worker",
    "rental-relay",
}
ONE_SHOT = {"kafka-topics", "rental-migrate"}
PLANNED = "quartet.planning.PlanCompleted.v1"
TRAINED = "quartet.training.TrainingCompleted.v1"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    """The default profile from this checkout's images, up and healthy; down with its volumes after."""
    build = subprocess.run(
        [sys.executable, "-m", "quartet_tools.images", "build"],
        capture_output=True,
        text=True,
        timeout=3600,
        cwd=REPO,
        check=False,
    )
    assert build.returncode == 0, f"building the images failed:\n{build.stderr[-4000:]}"
    stack = ComposeStack.create(f"quartet-e2e-{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("compose"))
    try:
        up = stack.run("up", "--detach", "--wait", "--wait-timeout", "600", "--pull", "never", timeout_s=900)
        assert up.returncode == 0, f"compose up failed:\n{up.stderr[-4000:]}\n{_unwell_logs(stack)}"
        yield stack
    finally:
        stack.run("down", "--volumes", "--remove-orphans", timeout_s=300)


def _states(stack: ComposeStack) -> dict[str, dict[str, Any]]:
    out = stack.run("ps", "--all", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    return {row["Service"]: row for row in rows}


def _unwell_logs(stack: ComposeStack) -> str:
    """The logs of every container that is neither healthy nor a one-shot step that exited 0."""
    unwell = [
        service
        for service, row in _states(stack).items()
        if row["Health"] != "healthy" and (row["State"], row["ExitCode"]) != ("exited", 0)
    ]
    return f"not healthy: {unwell}\n" + stack.logs(*unwell, tail=40)[-12000:] if unwell else ""


def _results(stack: ComposeStack, topic: str) -> dict[str, list[str]]:
    """The committed result events on `topic`, by job id."""
    by_job: dict[str, list[str]] = {}
    for event in committed_events(KernelSettings(kafka_bootstrap_servers=stack.kafka), topic, timeout_s=120):
        by_job.setdefault(str(event.subject), []).append(event.type)
    return by_job


def test_up_wait_brings_every_server_step_api_and_worker_to_healthy(stack: ComposeStack) -> None:
    states = _states(stack)
    assert set(states) == LONG_RUNNING | ONE_SHOT
    for service in sorted(LONG_RUNNING):
        assert states[service]["State"] == "running", states[service]
        assert states[service]["Health"] == "healthy", states[service]
    for service in sorted(ONE_SHOT):
        assert (states[service]["State"], states[service]["ExitCode"]) == ("exited", 0), states[service]
    assert len({row["ID"] for row in states.values()}) == len(states)


def _submit(kind: str, spec: Path, option: str, url: str, workdir: Path) -> dict[str, Any]:
    """`quartet submit KIND SPEC --wait --json` against the stack, as a user runs it."""
    out = quartet("submit", kind, str(spec), "--wait", "--json", option, url, "--timeout", "600", cwd=workdir)
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _assert_plots(out: dict[str, Any], workdir: Path) -> None:
    """The CLI saved the job's figures (paths relative to where it ran), each a PNG."""
    assert out["plots"], out
    for plot in out["plots"]:
        assert (workdir / plot).read_bytes().startswith(b"\x89PNG"), plot


def test_a_training_job_submitted_with_the_cli_reaches_its_result_and_plots(
    stack: ComposeStack, tmp_path: Path
) -> None:
    spec = REPO / "services" / "training-worker" / "examples" / "softmax_iris.yaml"
    out = _submit("training", spec, "--training-url", stack.url("training-api"), tmp_path)
    assert out["job"]["status"] == "succeeded", out
    assert out["result"]["job_id"] == out["job"]["id"]
    _assert_plots(out, tmp_path)


def test_a_planning_job_submitted_with_the_cli_reaches_its_result_and_plots(
    stack: ComposeStack, tmp_path: Path
) -> None:
    out = _submit("plan", SCENARIOS / "gaussian-peaks.yaml", "--planning-url", stack.url("planner-api"), tmp_path)
    assert out["job"]["status"] == "succeeded", out
    assert out["result"]["job_id"] == out["job"]["id"]
    _assert_plots(out, tmp_path)


def test_a_rental_journey_registers_lists_applies_approves_and_pays(stack: ComposeStack) -> None:
    api = RentalApi(stack.url("rental-api"), timeout_s=60)
    tag = uuid.uuid4().hex[:8]
    try:
        api.register(f"landlord-{tag}@example.test", "Compose Landlord", "landlord")
        landlord = api.login(f"landlord-{tag}@example.test")
        house = api.create_house(
            landlord,
            title=f"Compose flat {tag}",
            address="1 Container Street",
            city="Dockerville",
            district="Harbour",
            area_m2=50,
            rooms=2,
            monthly_rent_cents=90_000,
            deposit_cents=180_000,
        )
        api.register(f"tenant-{tag}@example.test", "Compose Tenant", "tenant")
        tenant = api.login(f"tenant-{tag}@example.test")
        start = date.today() + timedelta(days=10)
        application = api.apply(tenant, house["id"], start, start + timedelta(days=89))
        lease_id = str(api.approve(landlord, application["id"])["lease_id"])
        bills = api.bills(tenant, lease_id)
        assert bills and all(int(bill["outstanding_cents"]) > 0 for bill in bills), bills
        for bill in bills:
            api.pay(tenant, bill["id"], int(bill["outstanding_cents"]))
        assert all(int(bill["outstanding_cents"]) == 0 for bill in api.bills(tenant, lease_id))
    finally:
        api.close()


def test_jobs_published_with_the_kafka_console_tools_inside_compose_reach_their_results(stack: ComposeStack) -> None:
    """The README's "Publishing jobs to topics" commands, its Compose line: `docker compose exec kafka` publishes
    a training, a planning and a malformed job; each gets its one result and the malformed one a dead letter."""
    env = {
        **stack.variables(),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka,
        "COLUMNS": "400",
    }
    run = run_publish_section("inside Compose", env)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    for job_id, completed in ((run.training, TRAINED), (run.planning, PLANNED)):
        headers, key, value = run.record_about(job_id)
        assert (headers["ce_type"], key, value["job_id"]) == (completed, job_id, job_id)
    headers, key, _ = run.record_about(run.broken)
    assert (headers["ce_type"], key) == ("quartet.training.TrainingFailed.v1", run.broken)
    listing = run.stdout.split("dead letter(s) in training.jobs.dlq", 1)[-1]
    assert run.broken in listing and "SchemaError" in listing, run.stdout[-3000:]


def _planning_spec(population: int, iterations: int, seed: int) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((SCENARIOS / "gaussian-peaks.yaml").read_text())
    spec.update(optimizer={"name": "iboa", "population": population, "iterations": iterations}, compare=[], seed=seed)
    return spec


def _job(stack: ComposeStack, job_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{stack.url('planner-api')}/jobs/{job_id}", headers=ADMIN, timeout=30)
    assert answer.status_code == 200, answer.text
    job: dict[str, Any] = answer.json()
    return job


def test_a_worker_container_sigkilled_mid_job_still_leaves_exactly_one_result(stack: ComposeStack) -> None:
    # 600,000 evaluations: minutes of work, so the kill lands mid-job.
    spec = _planning_spec(200, 3000, 1)
    answer = httpx.post(f"{stack.url('planner-api')}/jobs", json=spec, headers=ADMIN, timeout=60)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]

    def under_way() -> bool:
        job = _job(stack, job_id)
        assert job["status"] in {"queued", "running"}, job
        return bool(job["status"] == "running" and job["progress"] > 0.05)

    wait_until(under_way, 300, "the job to be under way", interval_s=1)
    killed = subprocess.run(
        ["docker", "kill", "--signal", "KILL", stack.container("planner-worker")],
        capture_output=True,
        text=True,
        timeout=60,
        env=client_env(),
        check=False,
    )
    assert killed.returncode == 0, killed.stderr
    assert _states(stack)["planner-worker"]["State"] != "running"
    # One worker in this stack: its container started again is what takes the job over.
    started = stack.run("up", "--detach", "--wait", "--wait-timeout", "300", "planner-worker", timeout_s=400)
    assert started.returncode == 0, started.stderr[-3000:]
    wait_until(lambda: _job(stack, job_id)["status"] == "succeeded", 900, "the job to finish", interval_s=2)
    result = httpx.get(f"{stack.url('planner-api')}/jobs/{job_id}/result", headers=ADMIN, timeout=30).json()
    assert result["job_id"] == job_id and result["evaluations"] == 600_000, result
    assert _results(stack, JobTopics.of("planning").results)[job_id] == [PLANNED]


class Submitter(threading.Thread):
    """Submits small planning jobs until told to stop (at most `limit`, each answer kept): the accepted ids."""

    def __init__(self, stack: ComposeStack, limit: int) -> None:
        super().__init__(daemon=True)
        self.stack, self.limit = stack, limit
        self.accepted: list[str] = []
        self.refused: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.stack.url("planner-api"), headers=ADMIN, timeout=30) as client:
            for n in range(self.limit):
                if self.done.is_set():
                    return
                try:
                    answer = client.post("/jobs", json=_planning_spec(10, 10, 1000 + n))
                except httpx.HTTPError as exc:
                    self.refused.append(type(exc).__name__)
                else:
                    if answer.status_code == 202:
                        self.accepted.append(str(answer.json()["id"]))
                    else:
                        self.refused.append(f"{answer.status_code} {answer.text[:200]}")
                time.sleep(0.3)


def test_restarting_kafka_while_jobs_are_accepted_loses_nothing(stack: ComposeStack) -> None:
    submitter = Submitter(stack, limit=200)
    submitter.start()
    try:
        wait_until(lambda: len(submitter.accepted) >= 5, 120, "jobs to be accepted before the restart")
        restarted = stack.run("restart", "kafka", timeout_s=300)
        assert restarted.returncode == 0, restarted.stderr
        before = len(submitter.accepted)
        wait_until(lambda: len(submitter.accepted) >= before + 5, 300, "jobs to be accepted after the restart")
    finally:
        submitter.done.set()
        submitter.join(60)
    accepted = submitter.accepted

    def all_finished() -> bool:
        return all(_job(stack, job_id)["status"] == "succeeded" for job_id in accepted)

    wait_until(all_finished, 900, f"{len(accepted)} accepted jobs to succeed", interval_s=3)
    results = _results(stack, JobTopics.of("planning").results)
    assert {job_id: results.get(job_id) for job_id in accepted} == {job_id: [PLANNED] for job_id in accepted}


def test_a_malformed_setting_in_env_stops_its_service_naming_the_variable_and_up_wait_reports_it(
    stack: ComposeStack,
) -> None:
    bad = stack.workdir / "bad.env"
    bad.write_text(stack.env_file.read_text() + "TRAINING_MAX_ROWS='lots'\n")
    up = stack.run("up", "--detach", "--wait", "--wait-timeout", "120", "training-worker", env_file=bad, timeout_s=300)
    assert up.returncode != 0, up.stdout + up.stderr
    assert "training-worker" in up.stderr, up.stderr
    # The recreated container's own log (restarts append to it) names the variable and the value it refused.
    wait_until(
        lambda: "TRAINING_MAX_ROWS: " in stack.logs("training-worker"),
        180,
        f"the training worker to name TRAINING_MAX_ROWS (up said:\n{up.stderr[-2000:]})",
        interval_s=2,
    )
    logs = stack.logs("training-worker")
    assert "'lots'" in logs and "Traceback" not in logs, logs


def test_down_with_volumes_leaves_no_container_network_or_volume(stack: ComposeStack) -> None:
    assert any(stack.leftovers().values())
    down = stack.run("down", "--volumes", "--remove-orphans", timeout_s=300)
    assert down.returncode == 0, down.stderr
    assert stack.leftovers() == {"containers": [], "networks": [], "volumes": []}
