"""One job's trace, as a person opens it: the training service's API and worker as two real processes on the test
servers send OTLP to the collector, which sends it on to Zipkin; Zipkin's HTTP API must then hold one trace from
the API's request through the worker to the projector.

Zipkin's jar and the collector are what `make traces` and the Compose profile `tracing` run (quartet_tools.traces),
installed by `make tools-install` and started natively here on free ports.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from quartet_shared.net import free_port
from quartet_shared.settings import KernelSettings
from quartet_tools.traces import TraceViewer

from tests.support.auth import ADMIN
from tests.support.effects import wait_until
from tests.support.jobs import service_process

pytestmark = pytest.mark.integration

TRAINING: dict[str, Any] = {
    "model": {"kind": "linear"},
    "optimizer": {"kind": "closed_form"},
    "data": {"kind": "inline", "rows": [[1, 2], [2, 4], [3, 6], [4, 8]], "columns": ["x", "y"]},
}
# The spans one job leaves in its trace, by name, and the process each runs in.
API, WORKER = "api", "worker"
SPANS = {
    "POST /jobs": ("SERVER", API),
    "send {jobs}": ("PRODUCER", API),
    "process {jobs}": ("CONSUMER", WORKER),
    "create {results}": ("PRODUCER", WORKER),
    "process {results}": ("CONSUMER", API),
}


@pytest.fixture(scope="module")
def trace_viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TraceViewer]:
    """Zipkin and the collector, natively on free loopback ports."""
    started = TraceViewer.at(tmp_path_factory.mktemp("traces"), free_port(), free_port())
    try:
        started.start()
        yield started
    finally:
        started.stop()


def job_traces(viewer: TraceViewer, job_id: str) -> list[list[dict[str, Any]]]:
    """The traces Zipkin holds with a span about `job_id`, as its UI's search by tag finds them."""
    query = {"serviceName": "training-worker", "annotationQuery": f"cloudevents.event_subject={job_id}", "limit": "10"}
    answer = httpx.get(f"{viewer.zipkin.url}/api/v2/traces", params=query, timeout=10)
    answer.raise_for_status()
    traces: list[list[dict[str, Any]]] = answer.json()
    return traces


def test_one_jobs_trace_in_zipkin_runs_from_the_api_through_the_worker_to_the_projector(
    trace_viewer: TraceViewer, settings: KernelSettings, unique: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": str(settings.database_url), "OTEL_BSP_SCHEDULE_DELAY": "200", **trace_viewer.env()}
    worker_env = {**env, "TRAINING_INSTANCE_ID": f"{unique}-worker"}
    # service_process gives both processes the topics p<unique>.training.*.
    topics = {"jobs": f"p{unique}.training.jobs", "results": f"p{unique}.training.results"}
    # Zipkin keeps span names lower-cased.
    expected = {name.format(**topics).lower(): where for name, where in SPANS.items()}
    with (
        service_process("training-worker", "TRAINING_", settings, unique, tmp_path / API, env, role=API) as api,
        service_process("training-worker", "TRAINING_", settings, unique, tmp_path / WORKER, worker_env, role=WORKER),
    ):
        client = httpx.Client(base_url=api.base, headers=ADMIN, timeout=10)
        accepted = client.post("/jobs", json=TRAINING)
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["id"]
        wait_until(lambda: client.get(f"/jobs/{job_id}").json()["status"] == "succeeded", 120, "the job")
        found: list[list[dict[str, Any]]] = []

        def projected() -> bool:
            found[:] = job_traces(trace_viewer, job_id)
            names = {span["name"] for trace in found for span in trace}
            return set(expected) <= names

        wait_until(projected, 60, "the projector's span in Zipkin")
    assert len(found) == 1, [sorted({s["traceId"] for s in t}) for t in found]
    (trace,) = found
    by_name = {span["name"]: span for span in trace if span["name"] in expected}
    # Each hop is the child of the one before it, across both processes and Kafka.
    for parent, child in pairwise(expected):
        assert by_name[child].get("parentId") == by_name[parent]["id"], (child, parent)
    assert "parentId" not in by_name["post /jobs"]
    instance = {name: span["tags"]["service.instance.id"] for name, span in by_name.items()}
    for name, (kind, process) in expected.items():
        assert by_name[name]["kind"] == kind, name
        assert by_name[name]["localEndpoint"]["serviceName"] == "training-worker"
        assert (instance[name] == instance["post /jobs"]) == (process == API), name
    assert by_name[f"process {topics['jobs']}"]["tags"]["messaging.message.id"] == job_id
