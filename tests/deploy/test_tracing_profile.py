"""The Compose profile `tracing` and the collector's pipeline, read as Compose and the collector read them.

The viewer itself runs in tests/deploy/test_trace_viewer.py (natively, the same jar, binary and pipeline).
"""

from __future__ import annotations

import re

import yaml
from dotenv import dotenv_values
from quartet_tools.images import IMAGES, TRACING
from quartet_tools.traces import COLLECTOR_CONFIG, OTLP_PORT, ZIPKIN_PORT

from tests.deploy.compose_file import ENV_EXAMPLE, app_containers, compose, container_env

COLLECTOR_URL = f"http://otel-collector:{OTLP_PORT}"
# The collector's `${env:NAME:-default}`.
ENV_REFERENCE = re.compile(r"\$\{env:(\w+):-([^}]*)\}")


def reference(value: str) -> tuple[str, str]:
    """The variable a `${env:NAME:-default}` value reads, and its default."""
    match = ENV_REFERENCE.fullmatch(value)
    assert match, value
    return match.group(1), match.group(2)


def test_the_profile_runs_the_viewer_images_the_project_builds() -> None:
    """Zipkin and the collector are the image registry's own, and start only with `--profile tracing`."""
    services = compose()["services"]
    assert {"zipkin", "otelcol"} == set(TRACING)
    for name, image in (("zipkin", IMAGES["zipkin"]), ("otel-collector", IMAGES["otelcol"])):
        assert services[name]["profiles"] == ["tracing"], name
        assert services[name]["image"] == image.tag, name
        assert services[name]["build"] == {"context": ".", "dockerfile": image.dockerfile}, name
    assert services["otel-collector"]["depends_on"] == {"zipkin": {"condition": "service_healthy"}}


def test_the_collector_listens_for_the_containers_and_sends_to_zipkin() -> None:
    """The endpoint the containers are told is the one the collector listens on; it sends to Zipkin's span API."""
    env = compose()["services"]["otel-collector"]["environment"]
    assert env["OTELCOL_OTLP_HTTP_ENDPOINT"] == f"0.0.0.0:{OTLP_PORT}"
    assert env["OTELCOL_ZIPKIN_ENDPOINT"] == f"http://zipkin:{ZIPKIN_PORT}/api/v2/spans"


def test_every_service_container_traces_only_when_told_where() -> None:
    """By default no container exports a span; QUARTET_OTLP_ENDPOINT points every one at the collector."""
    containers = app_containers()
    assert containers
    for name, svc in containers.items():
        assert container_env(svc)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "", name
        told = container_env(svc, {**dotenv_values(ENV_EXAMPLE), "QUARTET_OTLP_ENDPOINT": COLLECTOR_URL})
        assert told["OTEL_EXPORTER_OTLP_ENDPOINT"] == COLLECTOR_URL, name


def test_the_pipeline_defaults_to_the_loopback() -> None:
    """Natively the collector listens on 127.0.0.1 and sends to a Zipkin there, at the ports quartet_tools uses."""
    config = yaml.safe_load(COLLECTOR_CONFIG.read_text())
    listen = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    send = config["exporters"]["zipkin"]["endpoint"]
    assert reference(listen) == ("OTELCOL_OTLP_HTTP_ENDPOINT", f"127.0.0.1:{OTLP_PORT}")
    assert reference(send) == ("OTELCOL_ZIPKIN_ENDPOINT", f"http://127.0.0.1:{ZIPKIN_PORT}/api/v2/spans")
    assert config["service"]["pipelines"]["traces"] == {
        "receivers": ["otlp"],
        "processors": ["batch"],
        "exporters": ["zipkin"],
    }
