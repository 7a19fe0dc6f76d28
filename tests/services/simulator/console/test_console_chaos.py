"""The chaos panel on fakes: admin only, one fault now through the FaultInjector, scenarios started as runs."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from simulator.bootstrap import bundled_scenarios
from simulator.console.chaos import Chaos
from simulator.domain.report import FaultRecord
from simulator.servers import ComposeCluster
from simulator.settings import SimulatorSettings

from tests.services.simulator.fakes import FakeProxies, FakeSimulation, compose_docker
from tests.support.auth import API_KEYS, RUN_KEY
from tests.support.console import offline_console, offline_settings, page_csrf_token, post_form, sign_in
from tests.support.effects import wait_until


@dataclass
class FakeWorkers:
    """Workers under control: records each kill."""

    killed: list[str | None] = field(default_factory=list)

    def kinds(self) -> list[str]:
        return ["training"]

    def kill(self, kind: str | None, pick: float) -> str:
        self.killed.append(kind)
        return f"{kind or 'any'} worker 0 (pid 4242)"

    def freeze(self, kind: str | None, frozen: bool) -> list[str]:
        return []

    def pause_one(self, kind: str | None, pick: float) -> tuple[str, Callable[[], None]]:
        return "w", lambda: None

    def stats(self) -> dict[str, Any]:
        return {}


@dataclass
class FakeServers:
    """The servers' control: records each stop and start."""

    calls: list[str] = field(default_factory=list)
    hold: threading.Event | None = None

    def stop_kafka(self) -> None:
        self.calls.append("stop_kafka")
        # A test may keep the broker down until it has looked at the console meanwhile.
        if self.hold is not None:
            assert self.hold.wait(10)

    def start_kafka(self) -> None:
        self.calls.append("start_kafka")

    def stop_redis(self) -> None:
        self.calls.append("stop_redis")

    def start_redis(self) -> None:
        self.calls.append("start_redis")


@dataclass
class FakeProxiedCluster:
    """Three Kafka nodes behind fault proxies: records each toxic added and removed."""

    toxics: list[tuple[str, int, str, dict[str, Any]]] = field(default_factory=list)
    worker_bootstrap: str | None = None

    def node_ids(self) -> list[int]:
        return [1, 2, 3]

    def add_toxic(self, node_id: int, name: str, kind: str, attributes: dict[str, Any], streams: Any = ()) -> None:
        self.toxics.append(("add", node_id, kind, attributes))

    def remove_toxic(self, node_id: int, name: str, streams: Any = ()) -> None:
        self.toxics.append(("remove", node_id, name, {}))


@dataclass
class Panel:
    client: TestClient
    workers: FakeWorkers
    servers: FakeServers
    chaos: Chaos
    made: list[FakeSimulation]


@pytest.fixture
def panel(tmp_path: Path) -> Iterator[Panel]:
    settings = offline_settings(tmp_path)
    workers, servers = FakeWorkers(), FakeServers()
    chaos = Chaos(settings, servers=servers, workers=workers)  # type: ignore[arg-type]
    made: list[FakeSimulation] = []
    with offline_console(settings, made, finish_at_once=True, chaos=chaos) as client:
        yield Panel(client, workers, servers, chaos, made)


def test_the_panels_actions_need_the_admin_scope(panel: Panel) -> None:
    sign_in(panel.client, RUN_KEY)

    page = panel.client.get("/console/chaos")
    refused = post_form(panel.client, "/console/chaos/faults", {"kind": "kill_worker", "target": "any"})

    assert page.status_code == 200 and "the panel is read-only for you" in page.text
    assert refused.status_code == 403 and refused.json()["required_scope"] == "simulator:admin"
    assert panel.workers.killed == []


def test_sigkill_goes_through_the_fault_injector_and_is_listed(panel: Panel) -> None:
    sign_in(panel.client)

    answer = post_form(panel.client, "/console/chaos/faults", {"kind": "kill_worker", "target": "training"})
    wait_until(lambda: len(panel.chaos.records()) == 1, 10, "the fault to be recorded")
    page = panel.client.get("/console/chaos")

    assert answer.status_code == 200 and panel.workers.killed == ["training"]
    record = panel.chaos.records()[0]
    assert (record.kind, record.target, record.ok, record.detail) == (
        "kill_worker",
        "training",
        True,
        "SIGKILL training worker 0 (pid 4242)",
    )
    assert 'data-fault="kill_worker" data-ok="True"' in page.text


def test_an_outage_stops_and_starts_the_server_again(panel: Panel) -> None:
    sign_in(panel.client)

    post_form(panel.client, "/console/chaos/faults", {"kind": "redis_outage", "down_s": "0"})
    wait_until(lambda: len(panel.chaos.records()) == 1, 10, "the outage to end")

    assert panel.servers.calls == ["stop_redis", "start_redis"]


def test_a_fault_the_panel_does_not_inject_is_a_422_problem(panel: Panel) -> None:
    sign_in(panel.client)

    answer = post_form(panel.client, "/console/chaos/faults", {"kind": "slow_consumer"})
    negative = post_form(panel.client, "/console/chaos/faults", {"kind": "broker_restart", "down_s": "-1"})
    no_workers = post_form(panel.client, "/console/chaos/workers", {"training": "0", "planning": "0"})

    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["title"] == "Invalid fault"
    assert negative.status_code == 422
    assert no_workers.status_code == 422 and no_workers.json()["detail"] == "ask for at least one worker"
    assert panel.chaos.records() == []


def test_a_bundled_scenario_starts_a_run_whose_report_is_one_click_away(panel: Panel) -> None:
    sign_in(panel.client)

    unknown = post_form(panel.client, "/console/chaos/runs", {"builtin": "no-such-scenario"})
    started = post_form(panel.client, "/console/chaos/runs", {"builtin": "demo"}, follow_redirects=False)
    run_id = panel.made[0].run_id
    wait_until(lambda: panel.client.get(f"/console/runs/{run_id}/report.html").status_code == 200, 20, "the report")
    page = panel.client.get("/console/chaos")

    assert unknown.status_code == 422 and "<li data-scenario-error><code>builtin</code>: one of [" in unknown.text
    assert started.status_code == 303
    assert f'href="/console/runs/{run_id}/report.html"' in page.text
    assert panel.client.get("/console/runs/nope/report.html").status_code == 404


def test_a_fault_injected_here_is_marked_on_the_live_audits_charts_while_it_lasts_and_after(panel: Panel) -> None:
    sign_in(panel.client)
    panel.servers.hold = threading.Event()

    post_form(panel.client, "/console/chaos/faults", {"kind": "broker_restart", "down_s": "0"})
    wait_until(lambda: panel.servers.calls == ["stop_kafka"], 10, "the broker to be stopped")
    during = chart_of(panel.client.get("/").text)["faults"]
    panel.servers.hold.set()
    wait_until(lambda: len(panel.chaos.records()) == 1, 10, "the outage to end")
    post_form(panel.client, "/console/chaos/faults", {"kind": "kill_worker", "target": "training"})
    wait_until(lambda: len(panel.chaos.records()) == 2, 10, "the kill to be recorded")
    after = chart_of(panel.client.get("/").text)["faults"]

    assert [(f["name"], f["ongoing"]) for f in during] == [("broker restart", True)]
    assert [(f["name"], f["ongoing"], f["ok"]) for f in after] == [
        ("broker restart", False, True),
        ("kill worker (training)", False, True),
    ]
    assert all(f["start"] <= f["end"] for f in after)


def chart_of(html: str) -> dict[str, Any]:
    found = re.search(r'id="charts" data-chart="([^"]*)"', html)
    assert found is not None, "the front page has no charts"
    chart: dict[str, Any] = json.loads(unescape(found.group(1)))
    return chart


def test_the_panels_forms_need_the_csrf_token_too(panel: Panel) -> None:
    sign_in(panel.client)

    answer = panel.client.post("/console/chaos/faults", data={"kind": "kill_worker", "target": "training"})

    assert answer.status_code == 403 and answer.json()["field"] == "csrf_token"
    assert panel.workers.killed == [] and panel.chaos.records() == []


def test_the_latency_button_is_disabled_with_the_reason_where_no_fault_proxy_is_in_front_of_the_nodes(
    panel: Panel,
) -> None:
    sign_in(panel.client)

    page = panel.client.get("/console/chaos")
    refused = post_form(panel.client, "/console/chaos/faults", {"kind": "latency", "ms": "200", "duration_s": "1"})

    button = re.search(r'<button[^>]*data-action="latency"[^>]*>', page.text)
    assert button is not None and "disabled" in button.group(0)
    assert "Latency needs a Kafka cluster under the simulator&#39;s control: a fault proxy (Toxiproxy)" in page.text
    assert refused.status_code == 409 and "fault proxy" in refused.json()["detail"]
    assert panel.chaos.records() == []


def test_latency_goes_through_the_nodes_fault_proxy_and_is_taken_off_again(tmp_path: Path) -> None:
    settings = SimulatorSettings(runs_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1", api_keys=API_KEYS)
    cluster = FakeProxiedCluster()
    chaos = Chaos(settings, cluster=cluster)  # type: ignore[arg-type]
    with offline_console(settings, [], chaos=chaos) as client:
        sign_in(client)
        page = client.get("/console/chaos")
        bad = post_form(client, "/console/chaos/faults", {"kind": "latency", "ms": "0", "duration_s": "1"})
        fields = {"kind": "latency", "node": "2", "ms": "250", "jitter_ms": "20", "duration_s": "0.1"}
        post_form(client, "/console/chaos/faults", fields)
        wait_until(lambda: len(chaos.records()) == 1, 10, "the latency to be taken off")

    button = re.search(r'<button[^>]*data-action="latency"[^>]*>', page.text)
    assert button is not None and "disabled" not in button.group(0)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "ms"
    assert cluster.toxics == [
        ("add", 2, "latency", {"latency": 250, "jitter": 20}),
        ("remove", 2, "latency", {}),
    ]
    assert chaos.records()[0].ok and chaos.marks()[0].name == "latency"


def test_under_compose_the_latency_button_is_enabled_and_slows_the_node_on_its_proxies(tmp_path: Path) -> None:
    """A Compose cluster slows a node on the profile's Toxiproxy, as natively: the button is enabled."""
    settings = SimulatorSettings(runs_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1", api_keys=API_KEYS)
    docker, _ = compose_docker()
    proxies = FakeProxies()
    chaos = Chaos(settings, cluster=ComposeCluster(docker, "quartet", proxies=proxies))  # type: ignore[arg-type]
    with offline_console(settings, [], chaos=chaos) as client:
        sign_in(client)
        page = client.get("/console/chaos")
        fields = {"kind": "latency", "node": "1", "ms": "200", "jitter_ms": "0", "duration_s": "0.1"}
        post_form(client, "/console/chaos/faults", fields)
        wait_until(lambda: len(chaos.records()) == 1, 10, "the latency to be taken off")

    button = re.search(r'<button[^>]*data-action="latency"[^>]*>', page.text)
    assert button is not None and "disabled" not in button.group(0)
    assert proxies.changes == [
        "add latency latency-downstream on kafka-1",
        "add latency latency-downstream on kafka-1-host",
        "remove latency-downstream from kafka-1",
        "remove latency-downstream from kafka-1-host",
    ]
    assert chaos.records()[0].ok


def upload(client: TestClient, name: str, content: bytes) -> Any:
    token = page_csrf_token(client)
    files = {"scenario_file": (name, content, "application/yaml")}
    return client.post("/console/chaos/runs", data={"csrf_token": token}, files=files, follow_redirects=False)


def test_an_uploaded_scenario_file_starts_a_run_and_a_wrong_one_lists_each_mistake_by_file_line_and_field(
    panel: Panel,
) -> None:
    sign_in(panel.client)
    good = (Path(bundled_scenarios()["demo"])).read_bytes()
    wrong = b"name: mine\nseed: 1\nduration_s: -5\nload: {shape: nonsense}\n"

    started = upload(panel.client, "demo-copy.yaml", good)
    refused = upload(panel.client, "mine.yaml", wrong)
    binary = upload(panel.client, "blob.yaml", b"\xff\xfe\x00name")

    assert started.status_code == 303 and len(panel.made) == 1
    assert refused.status_code == 422 and binary.status_code == 422
    errors = re.findall(r"<li data-scenario-error>(.*?)</li>", refused.text, re.S)
    assert any("mine.yaml:3" in e and "duration_s" in e for e in errors), errors
    assert "blob.yaml" in binary.text and "not UTF-8 text" in binary.text
    assert len(panel.made) == 1


def test_the_faults_of_a_run_started_here_are_marked_on_the_charts_under_the_runs_id(panel: Panel) -> None:
    sign_in(panel.client)
    post_form(panel.client, "/console/chaos/runs", {"builtin": "demo"})
    run = panel.made[0]
    run.t0 = time.time() - 30
    run.faults.append(FaultRecord(kind="kill_worker", at_s=10.0, end_s=11.5, target="planning"))
    run.faults.append(FaultRecord(kind="broker_restart", at_s=20.0, end_s=25.0, ok=False))

    faults = chart_of(panel.client.get("/").text)["faults"]

    assert [(f["name"], f["ok"]) for f in faults] == [
        (f"{run.run_id}: kill worker (planning)", True),
        (f"{run.run_id}: broker restart", False),
    ]
    assert faults[0]["start"] == round((run.t0 + 10.0) * 1000) and faults[1]["end"] == round((run.t0 + 25.0) * 1000)
