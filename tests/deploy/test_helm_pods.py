"""The chart's pods, run: every rendered Deployment's and StatefulSet's pod on the Docker engine, with the images
`make images` builds, the environment the kubelet would assemble from the chart's ConfigMaps and Secrets, and
Kafka, Redis and PostgreSQL containers (as docker-compose.yml runs them) on a private network under the names the
chart's values expect. Each pod must pass its startup, readiness and liveness probes, and stop on SIGTERM within
its grace period. tests/deploy/pods.py does the kubelet's part; the README's "Helm" section says what it leaves out.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import docker
import pytest
import yaml
from docker.models.containers import Container
from docker.models.networks import Network
from quartet_tools.images import IMAGES
from quartet_tools.infra import SERVICE_ROLES, compose_command, password_variable

from tests.deploy.chart import CHART, helm
from tests.deploy.compose_file import compose
from tests.deploy.manifests import KUBERNETES_VERSION, documents
from tests.deploy.pods import PROBE_DEFAULTS, Manifests, RunningPod, start_pod

pytestmark = pytest.mark.docker

VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
# (service key, role): every workload the chart renders with every service enabled.
WORKLOADS = [(key, role) for key, svc in VALUES["services"].items() for role in ("api", *svc["workers"])]
# The tag `make images` gives the service images (the image registry's, as docker-compose.yml names them).
IMAGE_TAG = IMAGES["training-worker"].tag.rsplit(":", 1)[1]
SERVERS = ("kafka", "redis", "postgres")


@dataclass
class Cluster:
    """The private network, its servers, the rendered chart and a running pod per workload."""

    network: Network
    manifests: Manifests
    pods: dict[str, RunningPod]


def chart_hosts() -> dict[str, str]:
    """The host names the chart's values give Kafka's bootstrap, Redis and PostgreSQL."""
    return {
        "kafka": VALUES["kafka"]["bootstrapServers"].split(":")[0],
        "redis": str(urlsplit(VALUES["redis"]["url"]).hostname),
        "postgres": VALUES["database"]["host"],
    }


def compose_servers(passwords: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Kafka, Redis and PostgreSQL as `docker compose config` resolves them, with the test's role passwords."""
    env = {**os.environ, **{password_variable(role): pw for role, pw in passwords.items()}}
    out = subprocess.run(
        [*compose_command(), "config", "--format", "json", *SERVERS],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    services: dict[str, dict[str, Any]] = json.loads(out.stdout)["services"]
    return {name: services[name] for name in SERVERS}


def nanoseconds(duration: str) -> int:
    """A Compose duration ("10s", "1m30s", "500ms") in nanoseconds, as the engine's health check wants it."""
    total, number = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    rest = duration
    while rest:
        if rest[0].isdigit() or rest[0] == ".":
            number, rest = number + rest[0], rest[1:]
            continue
        unit = "ms" if rest.startswith("ms") else rest[0]
        total, number, rest = total + float(number) * units[unit], "", rest[len(unit) :]
    return int(total * 1e9)


def start_server(
    client: docker.DockerClient, network: Network, name: str, svc: dict[str, Any], alias: str
) -> Container:
    """One server container as Compose would run it (image, command, environment, read-only binds, health
    check), reachable by its Compose name and by the chart's; its data lives and dies with the container."""
    check = svc["healthcheck"]
    return client.containers.run(
        svc["image"],
        entrypoint=svc.get("entrypoint"),
        command=svc.get("command"),
        environment=svc.get("environment"),
        name=f"{network.name}-{name}",
        hostname=svc.get("hostname"),
        user=svc.get("user"),
        volumes={
            v["source"]: {"bind": v["target"], "mode": "ro"} for v in svc.get("volumes", []) if v["type"] == "bind"
        },
        healthcheck={
            "test": check["test"],
            "interval": nanoseconds(check.get("interval", "30s")),
            "timeout": nanoseconds(check.get("timeout", "30s")),
            "start_period": nanoseconds(check.get("start_period", "0s")),
            "retries": check.get("retries", 3),
        },
        detach=True,
        network=network.name,
        networking_config={network.name: client.api.create_endpoint_config(aliases=[name, alias])},
        labels={"quartet.test": network.name},
    )


def wait_healthy(containers: list[Container], budget_s: float) -> None:
    """Until every container's health check passes; fail naming the one that did not, with its log."""
    deadline = time.monotonic() + budget_s
    waiting = list(containers)
    while waiting:
        for container in list(waiting):
            container.reload()
            if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
                waiting.remove(container)
            elif container.status == "exited" or time.monotonic() > deadline:
                checks = container.attrs["State"].get("Health", {}).get("Log", [])[-2:]
                log = container.logs(tail=30).decode(errors="replace")
                pytest.fail(f"{container.name} not healthy: {checks}\n{log}")
        time.sleep(1)


def render(passwords: dict[str, str], bootstrap: str) -> list[dict[str, Any]]:
    """The chart as the test installs it: every service, the topics Job, the test's passwords and Kafka address."""
    settings = {
        "image.tag": IMAGE_TAG,
        "kafka.bootstrapServers": bootstrap,
        "kafka.replicationFactor": "1",
        "kafka.partitions": "2",
        "topicsJob.enabled": "true",
        **{f"services.{key}.enabled": "true" for key in VALUES["services"]},
    }
    out = subprocess.run(
        [str(helm()), "template", "quartet", str(CHART), "--kube-version", KUBERNETES_VERSION]
        + [arg for k, v in settings.items() for arg in ("--set", f"{k}={v}")]
        + [arg for role, pw in passwords.items() for arg in ("--set-string", f"database.passwords.{role}={pw}")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return documents(out.stdout)


def pod_images(manifests: Manifests) -> list[str]:
    """Every image a rendered pod template names."""
    templates = [
        d["spec"]["template"] for d in manifests.documents if d["kind"] in ("Deployment", "StatefulSet", "Job")
    ]
    return [c["image"] for t in templates for c in t["spec"]["containers"] + t["spec"].get("initContainers", [])]


def require_images(client: docker.DockerClient, names: list[str]) -> None:
    """Fail, naming them, when images are missing: no registry serves them here, `make images` builds them."""
    missing = sorted({name for name in names if not client.images.list(name=name)})
    if missing:
        pytest.fail(f"images missing from the engine (build them with `make images`): {missing}")


def workload(manifests: Manifests, key: str, role: str) -> dict[str, Any]:
    """The rendered Deployment or StatefulSet of one service role."""
    kind = "Deployment" if role == "api" else "StatefulSet"
    return manifests.find(kind, f"quartet-{key}-{role}")


def pod_name(doc: dict[str, Any]) -> str:
    """A StatefulSet's first pod is <name>-0; a Deployment's or Job's carries a random suffix."""
    suffix = "0" if doc["kind"] == "StatefulSet" else secrets.token_hex(3)
    return f"{doc['metadata']['name']}-{suffix}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """The servers, the topics Job run to completion, then every workload's pod started at once."""
    client = docker.from_env()
    network = client.networks.create(f"quartet-helm-{secrets.token_hex(3)}", driver="bridge")
    passwords = {role: secrets.token_urlsafe(18) for role in SERVICE_ROLES}
    servers: list[Container] = []
    pods: dict[str, RunningPod] = {}
    try:
        resolved = compose_servers(passwords)
        manifests = Manifests(render(passwords, compose_bootstrap()))
        require_images(client, [svc["image"] for svc in resolved.values()] + pod_images(manifests))
        hosts = chart_hosts()
        servers = [start_server(client, network, name, resolved[name], hosts[name]) for name in SERVERS]
        wait_healthy(servers, budget_s=180)
        (job,) = [d for d in manifests.documents if d["kind"] == "Job"]
        topics = start_pod(client, network, manifests, job["spec"]["template"], pod_name(job))
        pods["topics"] = topics
        (container,) = topics.containers.values()
        assert container.wait(timeout=180)["StatusCode"] == 0, container.logs().decode(errors="replace")
        # A Job's pod is gone once it has succeeded (the hook's delete policy).
        pods.pop("topics").remove()
        for key, role in WORKLOADS:
            doc = workload(manifests, key, role)
            pods[f"{key}-{role}"] = start_pod(client, network, manifests, doc["spec"]["template"], pod_name(doc))
        yield Cluster(network, manifests, pods)
    finally:
        for pod in pods.values():
            pod.remove()
        for server in servers:
            server.remove(force=True, v=True)
        network.remove()
        client.close()


def compose_bootstrap() -> str:
    """The broker's address inside Compose's network: the listener it advertises to containers."""
    return str(compose()["x-kernel-env"]["KAFKA_BOOTSTRAP_SERVERS"])


@pytest.mark.parametrize(("key", "role"), WORKLOADS, ids=[f"{k}-{r}" for k, r in WORKLOADS])
def test_pod_passes_its_probes(cluster: Cluster, key: str, role: str) -> None:
    """Startup within the probe's own budget (period x failure threshold), then readiness and liveness."""
    pod = cluster.pods[f"{key}-{role}"]
    for container in pod.spec["containers"]:
        name = container["name"]
        startup = {**PROBE_DEFAULTS, **container["startupProbe"]}
        budget = startup["initialDelaySeconds"] + startup["periodSeconds"] * startup["failureThreshold"]
        pod.wait_probe(name, "startupProbe", pod.started + budget)
        # Unready is not fatal to a pod, but a ready one within a minute of starting is what a rollout waits for.
        pod.wait_probe(name, "readinessProbe", time.monotonic() + 60)
        assert pod.probe(name, "livenessProbe") is None, pod.logs(name)


def test_pods_stop_on_sigterm_within_their_grace_period(cluster: Cluster) -> None:
    """SIGTERM, as the kubelet sends it to PID 1 (no init process in a pod): each exits 0 before the SIGKILL."""
    pods = [cluster.pods[f"{key}-{role}"] for key, role in WORKLOADS]
    for pod in pods:
        pod.terminate()
    failures = [
        f"{pod.name}/{name}: exit {code} after {took:.1f}s\n{pod.logs(name)}"
        for pod in pods
        for name, (code, took) in pod.wait_terminated().items()
        if code != 0 or took >= pod.spec["terminationGracePeriodSeconds"]
    ]
    assert not failures, "\n".join(failures)
