"""The Compose profile `observability` on the project's own image: Debian's Prometheus comes up healthy with the
repository's configuration, rules and console mounted, finds a container by its Compose service name and scrapes
it, evaluates the alert rules, and serves the Quartet console with the web assets it loads.

Needs a Docker engine (deselected elsewhere, tests/deploy/conftest.py). The profile runs as a Compose project of its
own on a free host port, and `down -v` removes it at the end. The scrape target is a stand-in: a second container of
the same image answering, as the `simulator` service would, on port 8004 under that name (a Prometheus exposes its
own /metrics), so the test needs neither the servers nor the services. The scrape of a real service, the rules on
its metrics and the console drawing them are tests/deploy/test_metrics_native.py's, on the same Debian server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from quartet_shared.net import free_port
from quartet_tools import images
from quartet_tools.infra import compose_command, wait_for
from quartet_tools.metrics import CONSOLE

from tests.deploy.compose_project import Project

pytestmark = [pytest.mark.docker, pytest.mark.integration]

# The stand-in's command: the image's own flags, on the simulator's port, with storage of its own.
STAND_IN = [
    "--config.file=/etc/prometheus/prometheus.yml",
    "--storage.tsdb.path=/tmp/stand-in",
    "--web.listen-address=0.0.0.0:8004",
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """Prometheus up and healthy (`--wait`) beside its stand-in target, from the image built from this checkout."""
    images.build(images.OBSERVABILITY)
    ports = {"prometheus": free_port()}
    override = tmp_path_factory.mktemp("compose") / "override.yml"
    override.write_text(
        f"""services:
  prometheus:
    ports: !override ["127.0.0.1:{ports["prometheus"]}:9090"]
  stand-in:
    profiles: ["observability"]
    image: {images.IMAGES["prometheus"].tag}
    command: {STAND_IN}
    healthcheck:
      disable: true
    networks:
      default:
        aliases: [simulator]
"""
    )
    name = f"quartet-observability-{os.urandom(4).hex()}"
    project = Project([*compose_command(), "-f", str(override), "-p", name, "--profile", "observability"], name, ports)
    try:
        up = project.run("up", "-d", "--wait", "prometheus", "stand-in")
        if up.returncode != 0:
            pytest.fail(f"compose up failed:\n{up.stderr[-3000:]}\n{project.run('logs', '--tail', '60').stdout}")
        yield project
    finally:
        project.run("down", "--volumes", "--remove-orphans", timeout=300)


def api(project: Project, path: str, **params: str) -> Any:
    """The `data` of a Prometheus HTTP API answer."""
    answer = httpx.get(f"http://127.0.0.1:{project.ports['prometheus']}/api/v1/{path}", params=params, timeout=5)
    answer.raise_for_status()
    return answer.json()["data"]


def test_the_rules_are_loaded(project: Project) -> None:
    """Both groups of the mounted alerts.yaml, all seven rules."""
    groups = api(project, "rules")["groups"]
    assert {group["name"] for group in groups} == {"quartet.kafka", "quartet.services"}
    assert sum(len(group["rules"]) for group in groups) == 7


def test_a_container_found_by_its_service_name_is_scraped(project: Project) -> None:
    """The simulator job's DNS discovery finds the stand-in under the name `simulator` and scrapes it."""

    def scraped() -> bool:
        return len(api(project, "query", query='up{job="simulator"} == 1')["result"]) == 1

    wait_for(scraped, "the stand-in scraped as the simulator job", 90)
    (target,) = api(project, "query", query='up{job="simulator"} == 1')["result"]
    assert target["metric"]["compose_service"] == "simulator"
    assert target["metric"]["instance"].endswith(":8004")


def test_the_rules_are_evaluated(project: Project) -> None:
    """No job worker runs in this project: the no-live-worker rule holds for both job services."""

    def pending() -> set[str]:
        alerts = api(project, "alerts")["alerts"]
        return {a["labels"]["service"] for a in alerts if a["labels"]["alertname"] == "QuartetJobServiceNoLiveWorker"}

    wait_for(lambda: pending() == {"training-worker", "path-planner"}, "the no-live-worker alerts", 90)


def test_the_console_and_its_assets_are_served(project: Project) -> None:
    """The Quartet console renders (its library and Debian's prom.lib found), and the scripts it loads are in the
    image (Debian's web asset packages came with the server into the base)."""
    base = f"http://127.0.0.1:{project.ports['prometheus']}"
    page = httpx.get(f"{base}/{CONSOLE}", timeout=10)
    assert page.status_code == 200, page.text[-2000:]
    assert "Live job workers" in page.text and "quartetGraph(" in page.text
    for asset in ("rickshaw/rickshaw.min.js", "d3/d3.min.js", "popper.js/umd/popper.min.js", "js/prom_console.js"):
        assert httpx.get(f"{base}/classic/static/{asset}", timeout=10).status_code == 200, asset


def test_prometheus_runs_unprivileged(project: Project) -> None:
    uid = project.run("exec", "-T", "prometheus", "id", "-u")
    assert uid.returncode == 0, uid.stderr
    assert uid.stdout.strip() != "0"
