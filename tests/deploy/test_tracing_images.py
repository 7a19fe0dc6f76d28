"""The Compose profile `tracing` on the project's own images: a span sent to the collector over OTLP/HTTP is in
Zipkin's API moments later.

Needs a Docker engine (deselected elsewhere, tests/deploy/conftest.py). The two containers run as a Compose
project of their own on free host ports, and `down -v` removes it at the end. The job's whole trace through the
services is tests/deploy/test_trace_viewer.py's, on the same jar, binary and pipeline run natively.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from quartet_shared.net import free_port
from quartet_tools import images
from quartet_tools.infra import compose_command, wait_for

from tests.deploy.compose_project import Project

pytestmark = [pytest.mark.docker, pytest.mark.integration]

VIEWER = ("otel-collector", "zipkin")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The collector and Zipkin up and healthy (`--wait`), from images built from this checkout."""
    images.build(images.TRACING)
    ports = {name: free_port() for name in VIEWER}
    override = tmp_path_factory.mktemp("compose") / "override.yml"
    override.write_text(
        f"""services:
  otel-collector:
    ports: !override ["127.0.0.1:{ports["otel-collector"]}:4318"]
  zipkin:
    ports: !override ["127.0.0.1:{ports["zipkin"]}:9411"]
"""
    )
    name = f"quartet-tracing-{os.urandom(4).hex()}"
    project = Project([*compose_command(), "-f", str(override), "-p", name, "--profile", "tracing"], name, ports)
    try:
        up = project.run("up", "-d", "--wait", *VIEWER)
        if up.returncode != 0:
            pytest.fail(f"compose up failed:\n{up.stderr[-3000:]}\n{project.run('logs', '--tail', '60').stdout}")
        yield project
    finally:
        project.run("down", "--volumes", "--remove-orphans", timeout=300)


def test_a_span_sent_to_the_collector_is_in_zipkin(project: Project, tmp_path: Path) -> None:
    """What the services send the collector's published port reaches Zipkin's API, and its UI is served."""
    collector = f"http://127.0.0.1:{project.ports['otel-collector']}/v1/traces"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: f"probe-{tmp_path.name}"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=collector)))
    # A server span, as the API's own is: Zipkin leaves the kind out of an internal span's JSON.
    with provider.get_tracer("probe").start_as_current_span("POST /jobs", kind=SpanKind.SERVER) as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    zipkin = f"http://127.0.0.1:{project.ports['zipkin']}"

    def stored() -> bool:
        return httpx.get(f"{zipkin}/api/v2/trace/{trace_id}", timeout=5).status_code == 200

    wait_for(stored, f"trace {trace_id} in Zipkin", 60)
    (found,) = httpx.get(f"{zipkin}/api/v2/trace/{trace_id}", timeout=5).json()
    assert (found["name"], found["kind"]) == ("post /jobs", "SERVER")
    assert httpx.get(f"{zipkin}/zipkin/", timeout=5).text.count("<script") >= 1, "Zipkin's UI is served"


def test_the_viewer_runs_unprivileged(project: Project) -> None:
    """Neither container runs as root."""
    for service in VIEWER:
        uid = project.run("exec", "-T", service, "id", "-u")
        assert uid.returncode == 0, uid.stderr
        assert uid.stdout.strip() != "0", service
