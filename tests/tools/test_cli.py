"""The `quartet` command line against the real broker and against a test double of the job API."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import Header, Request
from fastapi.responses import JSONResponse, Response
from kafka import KafkaConsumer, TopicPartition
from quartet_contracts.envelope import Envelope
from quartet_contracts.topics import CORE_TOPICS, TopicSpec, expand
from quartet_shared.auth import JOBS_WRITE, ApiKeys, require_scope
from quartet_shared.db import make_engine
from quartet_shared.http import Problem, create_app
from quartet_shared.jobs import JobRecord, JobStatus, JobStore, job_id_for_key
from quartet_shared.net import free_port
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics
from quartet_tools.cli import app
from typer.testing import CliRunner

from tests.support.auth import ADMIN, ADMIN_KEY, API_KEYS_JSON, READ_KEY
from tests.support.hostile_yaml import DEEP_BRACKETS, alias_bomb
from tests.support.results import planning_result, training_result
from tests.support.served import Served

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def kafka_env(settings: KernelSettings) -> dict[str, str]:
    """The environment that points the CLI at the session's servers."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "REDIS_URL": settings.redis_url,
        "QUARTET_TOPIC_PARTITIONS": "3",
        "LOG_LEVEL": "INFO",
    }


def invoke(args: list[str], env: dict[str, str] | None = None) -> Any:
    """Run the CLI in-process, wide enough that tables do not wrap, with the test admin key unless `env` says."""
    env = {"COLUMNS": "250", "QUARTET_API_KEY": ADMIN_KEY, **(env or {})}
    return CliRunner().invoke(app, args, env=env, catch_exceptions=False)


# ---- a test double of the job API ----------------------------------------------------------------------------


def job_service(kind: str, tmp: Path) -> Any:
    """A job API that follows the contract: each GET moves a job one step (queued → running → done)."""
    store = JobStore(make_engine(f"sqlite:///{tmp / f'{kind}.sqlite3'}"))
    api = create_app(title=f"{kind} double", api_keys=ApiKeys.parse(API_KEYS_JSON))

    @api.post("/jobs", status_code=202, dependencies=[require_scope(JOBS_WRITE)])
    def submit(spec: dict[str, Any], idempotency_key: str | None = Header(default=None)) -> JSONResponse:
        """Accept a job."""
        if not isinstance(spec.get("epochs", 1), int):
            raise Problem(
                422,
                "Invalid request",
                "invalid fields: epochs",
                errors=[{"field": "epochs", "message": "must be an integer"}],
            )
        job_id = (
            job_id_for_key(idempotency_key)
            if idempotency_key
            else job_id_for_key(json.dumps(spec) + str(time.time_ns()))
        )
        record, _ = store.create(job_id, kind, spec)
        return JSONResponse(
            {"id": record.id, "status": record.status.value, "links": {"self": f"/jobs/{record.id}"}}, status_code=202
        )

    @api.get("/jobs/{job_id}")
    def status(job_id: str) -> JSONResponse:
        """Advance the job one step and show it."""
        record = store.get(job_id)
        if record is None:
            raise Problem(404, "Not Found", f"no job {job_id}")
        return JSONResponse(_advance(store, record).public().model_dump(mode="json"))

    @api.get("/jobs/{job_id}/result")
    def result(job_id: str) -> JSONResponse:
        """The result once succeeded."""
        record = store.get(job_id)
        if record is None:
            raise Problem(404, "Not Found")
        if record.status is not JobStatus.SUCCEEDED:
            raise Problem(409, "Conflict", f"job is {record.status.value}")
        return JSONResponse(store.result(job_id))

    @api.get("/jobs/{job_id}/plots/{name}.png")
    def plot(job_id: str, name: str, request: Request) -> Response:
        """A figure."""
        return Response(PNG + name.encode(), media_type="image/png")

    return api


def _advance(store: JobStore, record: JobRecord) -> JobRecord:
    """Move a job one step: queued → running → half done → failed (when its spec says `fail`) or succeeded."""
    if record.status is JobStatus.QUEUED:
        return store.mark_running(record.id)
    if record.status is not JobStatus.RUNNING:
        return record
    if record.progress < 0.5:
        return store.update_progress(record.id, 0.5)
    if record.spec.get("fail"):
        return store.fail(record.id, {"title": "Diverged", "detail": "loss became NaN", "status": 422})
    return store.complete(record.id, training_result() if record.kind == "training" else planning_result())


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The training and planning doubles, as base URLs."""
    # Computed before serving: a first run inside a request could outlast the CLI's 10 s read timeout.
    training_result()
    planning_result()
    with Served(job_service("training", tmp_path)) as training, Served(job_service("planning", tmp_path)) as planning:
        yield training.url, planning.url


# ---- topics ------------------------------------------------------------------------------------------------


def test_topics_create_then_list_shows_them_existing(settings: KernelSettings) -> None:
    env = kafka_env(settings)
    created = invoke(["topics", "--create", "--json"], env)
    assert created.exit_code == 0, created.output
    body = json.loads(created.stdout)
    names = [s.name for s in expand(CORE_TOPICS)]
    assert [t["name"] for t in body["topics"]] == names
    assert all(t["exists"] for t in body["topics"])
    # The broker acknowledges a creation before its metadata lists the topic; give it a moment.
    deadline = time.monotonic() + 20
    listed = json.loads(invoke(["topics", "--json"], env).stdout)
    while not all(t["exists"] for t in listed["topics"]) and time.monotonic() < deadline:
        time.sleep(0.5)
        listed = json.loads(invoke(["topics", "--json"], env).stdout)
    assert all(t["exists"] for t in listed["topics"])
    assert listed["created"] == []
    control = next(t for t in listed["topics"] if t["name"] == "training.control")
    assert control["broker_partitions"] == 1
    jobs = next(t for t in listed["topics"] if t["name"] == "training.jobs")
    assert jobs["broker_partitions"] == 3
    table = invoke(["topics"], env)
    assert table.exit_code == 0
    assert "training.jobs.dlq" in table.stdout
    assert "missing" not in table.stdout


def test_bad_settings_exit_2_without_a_traceback(settings: KernelSettings) -> None:
    result = invoke(["topics"], {**kafka_env(settings), "LOG_LEVEL": "LOUD"})
    assert result.exit_code == 2
    assert "LOG_LEVEL" in result.stderr
    assert "Traceback" not in result.output


def test_unreachable_broker_is_one_clear_line() -> None:
    result = invoke(["dlq", "list", "orders"], {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"})
    assert result.exit_code == 1
    assert result.stderr.startswith("quartet: error: Kafka is unreachable")
    assert len(result.stderr.strip().splitlines()) == 1


# ---- dead letters ------------------------------------------------------------------------------------------


def test_dlq_list_and_replay_once(settings: KernelSettings, unique: str) -> None:
    topic = f"orders.{unique}"
    ensure_topics(settings, [TopicSpec(topic, "orders", partitions=1), TopicSpec(f"{topic}.dlq", "dead", partitions=1)])
    env = Envelope(type="quartet.test.Order.v1", source="/tests", data={"n": 1}, key="house-7")
    key, value, headers = env.to_kafka()
    reason = [
        ("dlq_error_type", b"SchemaError"),
        ("dlq_error_message", b"n: must be positive"),
        ("dlq_attempts", b"1"),
        ("dlq_original_topic", topic.encode()),
        ("dlq_original_partition", b"0"),
        ("dlq_original_offset", b"41"),
        ("dlq_first_failure_time", b"2025-01-01T00:00:00+00:00"),
        ("dlq_last_failure_time", b"2025-01-01T00:00:01+00:00"),
        ("dlq_consumer_group", b"orders-group"),
        ("quartet_attempt", b"1"),
    ]
    producer = Producer(settings)
    producer.send_raw(f"{topic}.dlq", key, value, headers + reason).get(timeout=30)
    producer.close()
    cli_env = kafka_env(settings)

    listed = invoke(["dlq", "list", topic, "--json"], cli_env)
    assert listed.exit_code == 0, listed.output
    letters = json.loads(listed.stdout)
    assert len(letters) == 1
    assert letters[0]["ce_id"] == env.id
    assert letters[0]["key"] == "house-7"
    assert letters[0]["reason"]["dlq_error_type"] == "SchemaError"
    assert letters[0]["reason"]["dlq_original_offset"] == "41"
    table = invoke(["dlq", "list", topic], cli_env)
    assert "SchemaError: n: must be positive" in table.stdout
    assert f"{topic}[0]@41" in table.stdout

    replayed = invoke(["dlq", "replay", topic, "--json"], cli_env)
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.stdout) == {"topic": f"{topic}.dlq", "replayed": 1}
    again = invoke(["dlq", "replay", f"{topic}.dlq"], cli_env)
    assert again.exit_code == 0
    assert "replayed 0 dead letter(s)" in again.stdout

    reader = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    reader.assign([tp])
    reader.seek_to_beginning(tp)
    records: list[Any] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for batch in reader.poll(timeout_ms=500).values():
            records.extend(batch)
        if records and reader.position(tp) >= reader.end_offsets([tp])[tp]:
            break
    reader.close()
    assert len(records) == 1
    assert (records[0].key, records[0].value) == (key, value)
    assert list(records[0].headers) == headers
    assert invoke(["dlq", "list", f"nothing.{unique}"], cli_env).stdout.startswith("no dead letters")


# ---- jobs --------------------------------------------------------------------------------------------------


def test_submit_training_waits_shows_summary_and_saves_plots(
    services: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    training, _ = services
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump({"epochs": 3, "model": {"kind": "linear"}}))
    out = tmp_path / "plots"
    args = ["submit", "training", str(spec), "--wait", "--out", str(out), "--training-url", training]
    result = invoke([*args, "--poll-interval", "0.05", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["job"]["status"] == "succeeded"
    assert body["job"]["progress"] == 1.0
    assert body["result"] == training_result()
    assert sorted(Path(p).name for p in body["plots"]) == ["fit.png", "validation_curve.png"]
    assert (out / "fit.png").read_bytes() == PNG + b"fit"

    table = invoke(
        ["submit", "training", str(spec), "--wait", "--poll-interval", "0.05"], {"QUARTET_TRAINING_URL": training}
    )
    assert table.exit_code == 0, table.output
    best = f"{training_result()['sweep']['best_lam']:g}"
    assert re.search(rf"best λ\s*│ {best} \(by kfold, 5 folds\)", table.stdout), table.stdout
    assert "nested field" not in table.stdout and "item(s)" not in table.stdout
    job_id = next(line.split()[-1] for line in table.stdout.splitlines() if line.startswith("id "))
    # Without --out the plots go to ./out/<job id>/.
    assert (tmp_path / "out" / job_id / "validation_curve.png").read_bytes() == PNG + b"validation_curve"


def test_submit_plan_json_file_with_idempotency_key_names_one_job(services: tuple[str, str], tmp_path: Path) -> None:
    _, planning = services
    spec = tmp_path / "plan.json"
    spec.write_text(json.dumps({"iterations": 5}))
    args = ["submit", "plan", str(spec), "--planning-url", planning, "--idempotency-key", "k-1", "--json"]
    first = invoke(args)
    second = invoke(args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["id"] == json.loads(second.stdout)["id"] == job_id_for_key("k-1")
    assert json.loads(first.stdout)["status"] == "queued"


def test_submit_sends_the_api_key_and_explains_a_refusal(services: tuple[str, str], tmp_path: Path) -> None:
    _training, planning = services
    spec = tmp_path / "plan.json"
    spec.write_text(json.dumps({"iterations": 5}))
    args = ["submit", "plan", str(spec), "--planning-url", planning, "--json"]
    assert invoke(args).exit_code == 0
    for key, status in (("", 401), ("not-a-configured-key-at-all", 401), (READ_KEY, 403)):
        refused = invoke(args, {"QUARTET_API_KEY": key})
        assert refused.exit_code == 1
        assert f"answered {status}" in refused.stderr
        assert "QUARTET_API_KEY" in refused.stderr
        assert "Traceback" not in refused.stderr


def test_job_asks_training_then_planning(services: tuple[str, str]) -> None:
    training, planning = services
    job_id = job_id_for_key("lookup")
    spec_args = ["--training-url", training, "--planning-url", planning]
    httpx.post(
        f"{planning}/jobs", json={"iterations": 1}, headers={"Idempotency-Key": "lookup", **ADMIN}
    ).raise_for_status()
    shown = invoke(["job", job_id, *spec_args, "--json"])
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.stdout)
    assert body["service"] == planning
    assert body["kind"] == "planning"
    assert body["status"] == "running"
    table = invoke(["job", job_id, *spec_args])
    assert "running" in table.stdout and "50%" in table.stdout
    missing = invoke(["job", "no-such-job", *spec_args])
    assert missing.exit_code == 1
    assert "job no-such-job not found" in missing.stderr


def test_failed_job_and_problem_bodies_exit_non_zero(services: tuple[str, str], tmp_path: Path) -> None:
    training, _ = services
    failing = tmp_path / "fail.yaml"
    failing.write_text("epochs: 2\nfail: true\n")
    result = invoke(
        ["submit", "training", str(failing), "--wait", "--poll-interval", "0.05", "--training-url", training]
    )
    assert result.exit_code == 1
    assert "failed: Diverged — loss became NaN\n" in result.stderr

    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("epochs: many\n")
    rejected = invoke(["submit", "training", str(invalid), "--training-url", training])
    assert rejected.exit_code == 1
    assert "answered 422: Invalid request: invalid fields: epochs (epochs: must be an integer)" in rejected.stderr

    not_a_mapping = tmp_path / "list.yaml"
    not_a_mapping.write_text("- 1\n- 2\n")
    assert invoke(["submit", "training", str(not_a_mapping), "--training-url", training]).exit_code == 2

    down = invoke(["submit", "plan", str(invalid), "--planning-url", f"http://127.0.0.1:{free_port()}"])
    assert down.exit_code == 1
    assert "cannot reach" in down.stderr
    assert "Traceback" not in down.output


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("bomb.yaml", alias_bomb(6), "expands to more than"),
        ("deep.yaml", DEEP_BRACKETS, "nest"),
        ("deep.json", DEEP_BRACKETS * 100, "recursion"),
    ],
)
def test_a_hostile_job_file_is_refused_at_once(tmp_path: Path, name: str, text: str, words: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    started = time.monotonic()
    result = invoke(["submit", "training", str(path), "--training-url", f"http://127.0.0.1:{free_port()}"])
    assert time.monotonic() - started < 2.0  # a guard: six levels of aliases took 16 s of CPU before
    assert result.exit_code == 2
    assert "is not valid" in result.stderr and words in result.stderr
    assert "Traceback" not in result.output


# ---- AsyncAPI ----------------------------------------------------------------------------------------------


def test_asyncapi_to_stdout_and_file(tmp_path: Path) -> None:
    as_yaml = invoke(["asyncapi"])
    assert as_yaml.exit_code == 0
    assert yaml.safe_load(as_yaml.stdout)["asyncapi"] == "3.0.0"
    target = tmp_path / "docs" / "asyncapi.json"
    written = invoke(["asyncapi", "--format", "json", "--out", str(target)])
    assert written.exit_code == 0
    assert json.loads(target.read_text())["channels"]["training.jobs"]["address"] == "training.jobs"
    assert json.loads(invoke(["asyncapi", "--json"]).stdout)["asyncapi"] == "3.0.0"
