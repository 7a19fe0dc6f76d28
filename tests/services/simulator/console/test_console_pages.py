"""The console's pages on fakes: sign-in, the live audit and jobs, submitting, a job's page, the event stream,
and what it says while Kafka, Redis or a job service is down."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from quartet_shared.dlq import DeadLetter
from simulator.api import create_api
from simulator.console.feed import REQUEST_TYPES, LiveFeed, dead_letter_topics
from simulator.console.jobs import JobServices
from simulator.console.model import ClusterSample, GroupState, TopicState
from simulator.console.system import DeadLetterTools
from simulator.domain.audit import DeadLetterSeen, EventSeen, ResultSeen
from simulator.settings import SimulatorSettings

from tests.support.auth import ADMIN_KEY, READ_KEY, RUN_KEY
from tests.support.console import offline_settings, page_csrf_token, post_form

TRAINING = next(t for t, k in REQUEST_TYPES.items() if k == "training")
PNG = b"\x89PNG\r\n\x1a\nfake"
CLUSTER = ClusterSample(
    100.0,
    (TopicState("training.jobs", 6, 12),),
    (GroupState("training.jobs-worker", "Stable", ("worker-1@127.0.0.1",), ("training.jobs",), 8, 4),),
)


@dataclass
class FakeCollector:
    """What the feed's collector would have read: two accepted jobs, one outcome, one dead letter."""

    began: int = 0
    drained: int = 0

    def begin(self, timeout_s: float = 30.0) -> None:
        self.began += 1

    def stop(self) -> None:
        pass

    def drain(self) -> tuple[list[ResultSeen], list[DeadLetterSeen], list[EventSeen]]:
        self.drained += 1
        if self.drained > 1:
            return [], [], []
        events = [
            EventSeen("training.jobs", 0, i, f"c{i}", TRAINING, f"job{i}", f"job{i}", {}, at=1e12) for i in (1, 2)
        ]
        results = [ResultSeen("job1", "training", "completed", 1e12, "training.results", 0, 0)]
        dead = [DeadLetterSeen("g", "training.jobs.dlq", "training.jobs", "EnvelopeError", None, 1e12)]
        return results, dead, events


@dataclass
class FakeJobApi:
    """A training API answering like the real one; remembers each request's Authorization header."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    result_body: dict[str, Any] = field(
        default_factory=lambda: {"job_id": "job1", "model": "linear", "metrics": {"mse": 0.5}, "plots": ["loss"]}
    )
    seen_keys: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen_keys.append(request.headers.get("authorization", ""))
        path = request.url.path
        if request.method == "POST":
            spec = json.loads(request.content)
            if "model" not in spec:
                problem = {
                    "type": "about:blank",
                    "title": "Invalid request",
                    "status": 422,
                    "detail": "model: required",
                }
                return httpx.Response(422, json=problem)
            job = {
                "id": f"job{len(self.jobs) + 1}",
                "status": "queued",
                "progress": 0.0,
                "created_at": "2026-12-04T20:00:00",
            }
            self.jobs[job["id"]] = job
            return httpx.Response(202, json={"id": job["id"], "status": "queued", "links": {}})
        if path == "/jobs":
            return httpx.Response(200, json=list(self.jobs.values()))
        parts = path.strip("/").split("/")
        job = self.jobs.get(parts[1])
        if job is None:
            return httpx.Response(
                404, json={"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no job"}
            )
        if len(parts) == 2:
            return httpx.Response(200, json=job)
        if parts[2] == "result":
            return httpx.Response(200, json=self.result_body)
        return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})


@dataclass
class Console:
    client: TestClient
    feed: LiveFeed
    api: FakeJobApi


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    settings = offline_settings(tmp_path)
    feed = LiveFeed(
        settings,
        interval_s=3600,
        collector_factory=lambda _s: FakeCollector(),  # type: ignore[arg-type,return-value]
        kafka_check=lambda _s: None,
        redis_check=lambda _url: "Redis at redis://x is unreachable",
        cluster_probe=lambda _s: CLUSTER,
    )
    api = FakeJobApi()
    app = create_api(settings, feed=feed)
    # Planning is down: its API refuses connections, as a stopped service would.
    down = httpx.Client(transport=httpx.MockTransport(lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused"))))
    app.state.console_jobs = _routed({"training": httpx.Client(transport=httpx.MockTransport(api)), "planning": down})
    with TestClient(app, base_url="http://127.0.0.1:8004") as client:
        feed.tick()
        yield Console(client, feed, api)


def _routed(clients: dict[str, httpx.Client]) -> JobServices:
    def route(request: httpx.Request) -> httpx.Response:
        return clients[request.url.host].send(request)

    return JobServices({k: f"http://{k}" for k in clients}, client=httpx.Client(transport=httpx.MockTransport(route)))


def sign_in(client: TestClient, key: str = ADMIN_KEY) -> httpx.Response:
    return client.post("/console/login", data={"api_key": key}, follow_redirects=False)


def test_a_visitor_without_a_key_is_sent_to_sign_in_and_the_stream_answers_401(console: Console) -> None:
    page = console.client.get("/", follow_redirects=False)
    stream = console.client.get("/console/stream")

    assert page.status_code == 303 and page.headers["location"] == "/console/login"
    assert stream.status_code == 401
    assert stream.headers["content-type"] == "application/problem+json"
    assert stream.json()["title"] == "Unauthorized"


def test_only_a_key_with_simulator_run_signs_in(console: Console) -> None:
    wrong = sign_in(console.client, "not a key at all")
    reader = sign_in(console.client, READ_KEY)
    runner = sign_in(console.client, RUN_KEY)

    assert wrong.status_code == 401 and reader.status_code == 401
    assert runner.status_code == 303
    cookie = runner.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_the_front_page_shows_the_live_audit_the_jobs_and_what_is_down(console: Console) -> None:
    sign_in(console.client)
    post_form(console.client, "/console/jobs", {"kind": "training", "spec": "model: {kind: linear}"})

    page = console.client.get("/")

    assert page.status_code == 200
    html = page.text
    assert 'data-value="accepted">2<' in html and 'data-value="completed">1<' in html
    assert 'data-value="in_flight">1<' in html and 'data-value="lost">0<' in html
    assert 'data-value="dead_lettered">1<' in html
    assert 'data-job="job1"' in html and 'id="since">' in html and "UTC</strong>" in html
    assert "Redis is down: Redis at redis://x is unreachable" in html
    assert "The planning API is down" in html
    assert console.api.seen_keys[-1] == f"Bearer {ADMIN_KEY}"


def test_submitting_a_job_goes_to_its_page_and_a_refused_one_shows_the_problem(console: Console) -> None:
    sign_in(console.client)

    good = post_form(
        console.client, "/console/jobs", {"kind": "training", "spec": "model: {kind: linear}"}, follow_redirects=False
    )
    refused = post_form(console.client, "/console/jobs", {"kind": "training", "spec": "epochs: 3"})
    not_yaml = post_form(console.client, "/console/jobs", {"kind": "training", "spec": "model: [unclosed"})

    assert good.status_code == 303 and good.headers["location"] == "/console/jobs/training/job1"
    assert refused.status_code == 422 and "Invalid request: model: required" in refused.text
    assert not_yaml.status_code == 422 and "Not YAML" in not_yaml.text


def test_a_succeeded_jobs_page_shows_its_figures_and_serves_its_plot(console: Console) -> None:
    sign_in(console.client)
    post_form(console.client, "/console/jobs", {"kind": "training", "spec": "model: {kind: linear}"})
    console.api.jobs["job1"] |= {"status": "succeeded", "progress": 1.0}

    page = console.client.get("/console/jobs/training/job1")
    plot = console.client.get("/console/jobs/training/job1/plots/loss.png")
    missing = console.client.get("/console/jobs/training/nope")

    assert page.status_code == 200
    assert 'data-fact="metrics.mse">0.5<' in page.text and 'data-plot="loss"' in page.text
    assert plot.status_code == 200 and plot.content == PNG and plot.headers["content-type"] == "image/png"
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_the_stream_sends_the_whole_live_view_as_server_sent_events(console: Console) -> None:
    sign_in(console.client)

    with console.client.stream("GET", "/console/stream") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        data = next(line for line in stream.iter_lines() if line.startswith("data: "))

    view = json.loads(data.removeprefix("data: "))
    assert view["audit"]["accepted"] == 2 and view["audit"]["doubled"] == 0
    assert view["chart"]["accepted"][-1] > 0 and view["chart"]["completed"][-1] > 0
    assert any("Redis is down" in n for n in view["notices"])
    assert view["jobs"] == []


def test_the_feed_collects_only_once_kafka_answers() -> None:
    down: list[str | None] = ["broker away"]
    made: list[FakeCollector] = []

    def factory(_settings: SimulatorSettings) -> FakeCollector:
        made.append(FakeCollector())
        return made[-1]

    feed = LiveFeed(
        SimulatorSettings(),
        collector_factory=factory,  # type: ignore[arg-type]
        kafka_check=lambda _s: down[0],
        redis_check=lambda _url: None,
        cluster_probe=lambda _s: CLUSTER,
    )
    feed.tick()
    assert made == [] and feed.audit().accepted == 0 and feed.health.notices == ["Kafka is down: broker away"]

    down[0] = None
    feed.tick()
    feed.tick()

    assert len(made) == 1 and made[0].began == 1
    assert feed.audit().accepted == 2 and feed.health.notices == []
    assert [g.lag for g in feed.topology()[1]] == [4]


@dataclass
class FakeDeadLetters:
    """A dead-letter topic holding two letters until they are replayed."""

    letters: dict[str, list[DeadLetter]] = field(default_factory=dict)
    replayed: list[str] = field(default_factory=list)

    def read(self, _settings: Any, topic: str) -> list[DeadLetter]:
        return self.letters.get(topic, [])

    def replay(self, _settings: Any, topic: str) -> int:
        self.replayed.append(topic)
        return len(self.letters.get(topic, []))


def test_the_dead_letters_page_shows_counts_reasons_and_coordinates_and_replays(console: Console) -> None:
    fake = FakeDeadLetters()
    topic = dead_letter_topics(console.feed.settings)[0]
    reason = {"dlq_original_topic": "training.jobs", "dlq_original_partition": "1", "dlq_original_offset": "9"}
    fake.letters[topic] = [DeadLetter(3, 0, "g1", None, None, {**reason, "dlq_error_type": "EnvelopeError"}, "x")]
    console.client.app.state.console_dlq = DeadLetterTools(read=fake.read, replay=fake.replay)  # type: ignore[attr-defined]
    sign_in(console.client, RUN_KEY)

    page = console.client.get("/console/dead-letters")
    refused = post_form(console.client, "/console/dead-letters/replay", {"topic": topic})
    sign_in(console.client)
    unknown = post_form(console.client, "/console/dead-letters/replay", {"topic": "elsewhere.dlq"})
    done = post_form(console.client, "/console/dead-letters/replay", {"topic": topic})

    assert page.status_code == 200
    assert f'data-dlq="{topic}"' in page.text and 'data-reason="EnvelopeError"' in page.text
    assert "training.jobs[1]@9" in page.text
    assert refused.status_code == 403 and refused.json()["required_scope"] == "simulator:admin"
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "topic"
    assert done.status_code == 200 and f"Replayed 1 from {topic}" in done.text
    assert fake.replayed == [topic]


def test_the_dead_letters_page_says_so_while_kafka_is_down(console: Console) -> None:
    console.feed.kafka_check = lambda _s: "no broker"
    console.feed.tick()
    sign_in(console.client)

    page = console.client.get("/console/dead-letters")

    assert page.status_code == 200
    assert "Dead letters cannot be read while Kafka is down." in page.text and "Kafka is down: no broker" in page.text


def test_the_topology_page_lists_services_groups_with_lag_and_topics(console: Console) -> None:
    sign_in(console.client)

    page = console.client.get("/console/topology")

    assert page.status_code == 200
    assert 'data-group="training.jobs-worker"' in page.text and "worker-1@127.0.0.1" in page.text
    assert "<td data-lag><strong>4</strong>" in page.text
    assert 'data-topic="training.jobs"' in page.text
    assert 'data-service="training-worker"' in page.text and "unreachable" in page.text


def test_a_plans_page_draws_its_path_in_3d_with_plotly_served_locally(console: Console) -> None:
    sign_in(console.client)
    post_form(console.client, "/console/jobs", {"kind": "training", "spec": "model: {kind: linear}"})
    console.api.jobs["job1"] |= {"status": "succeeded", "progress": 1.0}
    console.api.result_body = {"job_id": "job1", "path": [[1, 1, 50], [9, 9, 60]], "plots": []}
    same = httpx.Client(transport=httpx.MockTransport(console.api))
    console.client.app.state.console_jobs = _routed({"training": same, "planning": same})  # type: ignore[attr-defined]

    page = console.client.get("/console/jobs/planning/job1")
    script = console.client.get("/console/vendor/plotly.min.js")
    licence = console.client.get("/console/vendor/plotly-LICENSE.txt")

    assert page.status_code == 200 and 'id="plan3d"' in page.text and "/console/vendor/plotly.min.js" in page.text
    assert "The terrain is not drawn" in page.text
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert len(script.content) > 1_000_000 and b"plotly" in script.content[:2000].lower()
    assert licence.status_code == 200 and "Permission is hereby granted" in licence.text


def test_a_collector_that_cannot_begin_is_named_and_tried_again() -> None:
    attempts: list[int] = []

    class Refusing(FakeCollector):
        def begin(self, timeout_s: float = 30.0) -> None:
            attempts.append(1)
            if len(attempts) == 1:
                raise RuntimeError("topics not there yet")

    feed = LiveFeed(
        SimulatorSettings(),
        collector_factory=lambda _s: Refusing(),  # type: ignore[arg-type,return-value]
        kafka_check=lambda _s: None,
        redis_check=lambda _url: None,
        cluster_probe=lambda _s: CLUSTER,
    )
    feed.tick()
    assert feed.collector is None
    assert feed.health.notices == ["The live audit is not collecting yet: RuntimeError: topics not there yet"]

    feed.tick()

    assert feed.collector is not None and len(attempts) == 2 and feed.health.notices == []


def test_a_form_post_without_this_sign_ins_csrf_token_is_a_403_problem_and_changes_nothing(console: Console) -> None:
    sign_in(console.client, RUN_KEY)
    other_sign_in = page_csrf_token(console.client, "/")
    sign_in(console.client)
    token = page_csrf_token(console.client, "/")
    spec = {"kind": "training", "spec": "model: {kind: linear}"}

    missing = console.client.post("/console/jobs", data=spec)
    wrong = console.client.post("/console/jobs", data={**spec, "csrf_token": "0" * 64})
    stale = console.client.post("/console/jobs", data={**spec, "csrf_token": other_sign_in})
    logout = console.client.post("/console/logout", follow_redirects=False)
    good = console.client.post("/console/jobs", data={**spec, "csrf_token": token}, follow_redirects=False)

    for refused in (missing, wrong, stale, logout):
        assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["title"] == "Forbidden" and refused.json()["field"] == "csrf_token"
    assert "reload the page" in wrong.json()["detail"]
    assert other_sign_in != token and page_csrf_token(console.client, "/console/dead-letters") == token
    assert good.status_code == 303 and list(console.api.jobs) == ["job1"]


def test_a_sign_in_another_site_posted_is_refused_by_what_the_browser_says_of_its_origin(console: Console) -> None:
    def sign_in_from(site: str) -> httpx.Response:
        data = {"api_key": ADMIN_KEY}
        return console.client.post(
            "/console/login", data=data, headers={"Sec-Fetch-Site": site}, follow_redirects=False
        )

    cross, same_site, own, typed = (sign_in_from(s) for s in ("cross-site", "same-site", "same-origin", "none"))

    assert cross.status_code == same_site.status_code == 403
    assert cross.headers["content-type"] == "application/problem+json" and "another site" in cross.json()["detail"]
    assert "set-cookie" not in cross.headers
    assert own.status_code == typed.status_code == 303
