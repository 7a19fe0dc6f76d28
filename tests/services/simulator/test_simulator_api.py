"""The runs API: start a run, follow it, read its reports; bad scenarios, busy and unreachable systems."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from simulator.api import RunManager, create_api
from simulator.domain.scenario import Scenario
from simulator.settings import SimulatorSettings

from tests.services.simulator.fakes import FakeSimulation
from tests.services.simulator.inputs import GOOD
from tests.support.auth import ADMIN, API_KEYS, RUNNER, WRITER
from tests.support.effects import wait_until
from tests.support.hostile_yaml import DEEP_BRACKETS, alias_bomb


class Factory:
    """Makes fake simulations; remembers them so tests can release or inspect them."""

    def __init__(self, runs: Path) -> None:
        self.runs = runs
        self.made: list[FakeSimulation] = []
        self.unreachable: list[str] = []

    def __call__(self, _settings: SimulatorSettings, scenario: Scenario) -> Any:
        sim = FakeSimulation(self.runs / f"run{len(self.made):04d}", f"run{len(self.made):04d}", list(self.unreachable))
        self.made.append(sim)
        return sim


@pytest.fixture
def factory(tmp_path: Path) -> Factory:
    return Factory(tmp_path)


@pytest.fixture
def client(factory: Factory, tmp_path: Path) -> Iterator[TestClient]:
    settings = SimulatorSettings(runs_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1", api_keys=API_KEYS)
    with TestClient(create_api(settings, RunManager(settings, factory)), headers=ADMIN) as c:
        yield c
    for sim in factory.made:
        sim.release.set()


@pytest.mark.slow
def test_a_run_goes_from_running_to_passed_with_its_reports(client: TestClient, factory: Factory) -> None:
    answer = client.post("/runs", json={"scenario_yaml": GOOD})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "running" and body["scenario"] == "api"
    assert answer.headers["location"].endswith(f"/runs/{body['id']}")
    assert client.get(f"/runs/{body['id']}/report").status_code == 409
    factory.made[0].release.set()
    wait_until(lambda: client.get(f"/runs/{body['id']}").json()["status"] == "passed", 10, "the run to pass")
    status = client.get(f"/runs/{body['id']}").json()
    assert status["passed"] is True and "PASSED" in status["summary"]
    assert set(status["links"]) == {"self", "report", "html"}
    report = client.get(status["links"]["report"])
    assert report.status_code == 200 and report.json()["audit"]["passed"] is True
    html = client.get(status["links"]["html"])
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert [r["id"] for r in client.get("/runs").json()] == [body["id"]]


@pytest.mark.slow
def test_a_failed_audit_is_a_failed_run(client: TestClient, factory: Factory) -> None:
    run_id = client.post("/runs", json={"scenario_yaml": GOOD}).json()["id"]
    factory.made[0].passed = False
    factory.made[0].release.set()
    wait_until(lambda: client.get(f"/runs/{run_id}").json()["status"] == "failed", 10, "the run to fail")


@pytest.mark.slow
def test_one_run_at_a_time(client: TestClient) -> None:
    first = client.post("/runs", json={"scenario_yaml": GOOD}).json()["id"]
    busy = client.post("/runs", json={"builtin": "demo"})
    assert busy.status_code == 409
    assert busy.json()["run"] == first


def test_an_unreachable_system_is_503_naming_the_part(client: TestClient, factory: Factory) -> None:
    factory.unreachable = ["Kafka at 127.0.0.1:1 is unreachable"]
    answer = client.post("/runs", json={"scenario_yaml": GOOD})
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["unreachable"] == ["Kafka at 127.0.0.1:1 is unreachable"]
    assert client.get("/runs").json() == []


def test_a_bad_scenario_is_422_naming_line_and_field(client: TestClient) -> None:
    answer = client.post("/runs", json={"scenario_yaml": GOOD.replace("seed: 1", "seed: -1")})
    assert answer.status_code == 422
    (error,) = answer.json()["errors"]
    assert (error["line"], error["field"]) == (2, "seed")


def with_job_file(name: str) -> str:
    """GOOD with its pool entry replaced by `file: <name>`."""
    return GOOD.replace("      - spec: {model: {kind: linear}, epochs: 3}\n", f"      - file: '{name}'\n")


def test_job_files_outside_the_scenario_dir_are_never_read(client: TestClient) -> None:
    answers = []
    for name in ("../../../../etc/passwd", "/etc/passwd", "../../../../etc/no-such-file", "/etc/no-such-file"):
        answer = client.post("/runs", json={"scenario_yaml": with_job_file(name)})
        assert answer.status_code == 422, answer.text
        assert "root:" not in answer.text and "No such file" not in answer.text
        answers.append(answer.json()["errors"])
    assert all(errors == answers[0] for errors in answers)  # no way to tell which files exist
    (error,) = answers[0]
    assert error["field"] == "mix[0].pool[0].file"
    assert "only from the scenario directory" in error["message"]


@pytest.mark.parametrize("name", ["jobs/" + "y" * 300 + ".yaml", "z" * 256])
def test_a_job_file_name_too_long_for_the_file_system_is_422_not_found(client: TestClient, name: str) -> None:
    # The operating system refuses such a name (ENAMETOOLONG), which POST /runs answered with a 500.
    answer = client.post("/runs", json={"scenario_yaml": with_job_file(name)})
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["errors"]
    assert error["field"] == "mix[0].pool[0].file"
    assert "no job file" in error["message"] and len(error["message"]) < 300


@pytest.mark.slow
def test_job_files_come_from_the_configured_scenario_dir(factory: Factory, tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "job.yaml").write_text("model: {kind: linear}\nepochs: 2\n")
    settings = SimulatorSettings(
        runs_dir=tmp_path, scenario_dir=tmp_path / "mine", kafka_bootstrap_servers="127.0.0.1:1", api_keys=API_KEYS
    )
    with TestClient(create_api(settings, RunManager(settings, factory)), headers=ADMIN) as c:
        assert c.post("/runs", json={"scenario_yaml": with_job_file("job.yaml")}).status_code == 202
        factory.made[0].release.set()


@pytest.mark.parametrize("text", [alias_bomb(6), DEEP_BRACKETS], ids=["alias bomb", "1000 brackets"])
def test_yaml_bombs_are_422_at_once(client: TestClient, text: str) -> None:
    started = time.monotonic()
    answer = client.post("/runs", json={"scenario_yaml": text})
    assert time.monotonic() - started < 1.0  # a guard: 16 s of CPU and a 500 after 4.8 s before
    assert answer.status_code == 422, answer.text
    assert "YAML refused" in answer.json()["errors"][0]["message"]


def test_a_scenario_object_gets_field_errors(client: TestClient) -> None:
    answer = client.post("/runs", json={"scenario": {"name": "x"}})
    assert answer.status_code == 422
    assert {"seed", "duration_s", "rate", "mix"} <= {e["field"] for e in answer.json()["errors"]}


def test_the_body_must_name_exactly_one_scenario(client: TestClient) -> None:
    answer = client.post("/runs", json={"builtin": "demo", "scenario_yaml": GOOD})
    assert answer.status_code == 422
    assert client.post("/runs", json={"builtin": "nope"}).status_code == 422


def test_bundled_scenarios_are_listed(client: TestClient) -> None:
    assert {"demo", "chaos", "chaos-short"} <= set(client.get("/scenarios").json())


def test_unknown_runs_are_404(client: TestClient) -> None:
    assert client.get("/runs/nope").status_code == 404
    assert client.get("/runs/nope/report").status_code == 404
    assert client.get("/runs/../etc/report.html").status_code == 404
    # An id longer than a file name may be (ENAMETOOLONG) was a 500.
    assert client.get("/runs/" + "a" * 5000).status_code == 404


@pytest.mark.slow
def test_delete_cuts_the_load_short(client: TestClient, factory: Factory) -> None:
    run_id = client.post("/runs", json={"scenario_yaml": GOOD}).json()["id"]
    assert client.delete(f"/runs/{run_id}").status_code == 202
    assert factory.made[0].stopped
    wait_until(lambda: client.get(f"/runs/{run_id}").json()["status"] == "passed", 10, "the run to finish")


@pytest.mark.slow
def test_a_finished_run_is_found_on_disk_by_a_new_process(client: TestClient, factory: Factory, tmp_path: Path) -> None:
    run_id = client.post("/runs", json={"scenario_yaml": GOOD}).json()["id"]
    factory.made[0].release.set()
    wait_until(lambda: client.get(f"/runs/{run_id}").json()["status"] == "passed", 10, "the run to pass")
    settings = SimulatorSettings(runs_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1", api_keys=API_KEYS)
    with TestClient(create_api(settings, RunManager(settings, factory)), headers=ADMIN) as fresh:
        status = fresh.get(f"/runs/{run_id}").json()
        assert status["status"] == "passed"
        assert fresh.get(f"/runs/{run_id}/report.html").status_code == 200


@pytest.mark.slow
def test_shutting_down_stops_a_run_without_waiting_for_it_to_settle(factory: Factory, tmp_path: Path) -> None:
    settings = SimulatorSettings(runs_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1", api_keys=API_KEYS)
    with TestClient(create_api(settings, RunManager(settings, factory)), headers=ADMIN) as c:
        assert c.post("/runs", json={"scenario_yaml": GOOD}).status_code == 202
    (sim,) = factory.made
    assert sim.stopped and sim.settle is False


# ---- credentials ---------------------------------------------------------------------------------------------

FAULTY = GOOD + "faults:\n  - {kind: garbage, count: 1}\n"
MANAGED = GOOD + "workers:\n  training: {count: 1, env: {LD_PRELOAD: /tmp/evil.so}}\n"
ROUTES = [
    ("POST", "/runs"),
    ("GET", "/runs"),
    ("GET", "/runs/run0000"),
    ("DELETE", "/runs/run0000"),
    ("GET", "/runs/run0000/report"),
    ("GET", "/runs/run0000/report.html"),
    ("GET", "/scenarios"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_simulator_route_needs_a_key_with_the_run_scope(client: TestClient, method: str, path: str) -> None:
    anonymous = client.request(method, path, json={"scenario_yaml": GOOD}, headers={"Authorization": ""})
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.headers["content-type"] == "application/problem+json"
    jobs_only = client.request(method, path, json={"scenario_yaml": GOOD}, headers=WRITER)
    assert jobs_only.status_code == 403, jobs_only.text
    assert jobs_only.json()["required_scope"] == "simulator:run"


def test_health_stays_open(client: TestClient) -> None:
    assert client.get("/healthz", headers={"Authorization": ""}).status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize(("scenario", "named"), [(FAULTY, "garbage"), (MANAGED, "worker processes")])
def test_faults_and_managed_workers_need_the_admin_scope(
    client: TestClient, factory: Factory, scenario: str, named: str
) -> None:
    refused = client.post("/runs", json={"scenario_yaml": scenario}, headers=RUNNER)
    assert refused.status_code == 403, refused.text
    assert refused.json()["required_scope"] == "simulator:admin"
    assert named in refused.json()["detail"]
    assert factory.made == []
    accepted = client.post("/runs", json={"scenario_yaml": scenario}, headers=ADMIN)
    assert accepted.status_code == 202, accepted.text


@pytest.mark.slow
def test_a_run_without_faults_needs_only_the_run_scope(client: TestClient, factory: Factory) -> None:
    answer = client.post("/runs", json={"scenario_yaml": GOOD}, headers=RUNNER)
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["id"]
    assert client.get(f"/runs/{run_id}", headers=RUNNER).json()["status"] == "running"


def test_without_configured_keys_the_simulator_starts_and_refuses_every_run(factory: Factory, tmp_path: Path) -> None:
    settings = SimulatorSettings(runs_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1", api_keys=None)
    with TestClient(create_api(settings, RunManager(settings, factory)), headers=ADMIN) as c:
        assert c.get("/healthz").status_code == 200
        assert c.post("/runs", json={"scenario_yaml": GOOD}).status_code == 401
    assert factory.made == []


def test_openapi_declares_the_bearer_scheme_on_the_runs(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert doc["paths"]["/runs"]["post"]["security"] == [{"ApiKey": []}]
