"""Rendered Kubernetes pods run on a Docker engine, as far as a kubelet's behaviour matters to the chart.

No Kubernetes runs here (see the README's "Helm" section), so this does the kubelet's part for one pod at a time:
a pause-like sandbox container owns the pod's network namespace (its hostname, its Services' DNS names as
network aliases, its ports published on 127.0.0.1); init containers run to completion in it, then the app
containers, each with the environment the kubelet would assemble from the pod's ConfigMaps and Secrets, its
security context (user, read-only root, dropped capabilities), its emptyDir volumes and its memory limit.
Probes (httpGet, tcpSocket, exec) are run against the running containers the way the kubelet runs them.
What the kubelet does and this does not: scheduling, restarts, resource requests, projected volumes, DNS search
domains (Services answer by their short name only), $(VAR) expansion in values.
"""

from __future__ import annotations

import base64
import re
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import docker
import httpx
from docker.models.containers import Container
from docker.models.networks import Network

# Kubernetes' defaults for a probe's fields (core/v1 Probe).
PROBE_DEFAULTS = {"periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3, "initialDelaySeconds": 0}
QUANTITY = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
UNITS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


class PodError(AssertionError):
    """The pod could not be started as the kubelet would start it; the message says which part and why."""


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("512Mi", "2Gi", "1G") in bytes."""
    match = QUANTITY.match(str(quantity))
    if not match:
        raise PodError(f"unsupported memory quantity {quantity!r}")
    return int(match.group(1)) * UNITS[match.group(2)]


@dataclass(frozen=True)
class Manifests:
    """The rendered chart plus any objects the cluster already holds (a Secret the values name, say)."""

    documents: list[dict[str, Any]]

    def find(self, kind: str, name: str) -> dict[str, Any]:
        """The one object of that kind and name."""
        for doc in self.documents:
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
        raise PodError(f"{kind} {name!r} is referenced but neither rendered nor supplied")

    def data(self, kind: str, name: str) -> dict[str, str]:
        """A ConfigMap's data, or a Secret's stringData and (decoded) data, as the container sees them."""
        doc = self.find(kind, name)
        values = (
            {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()} if kind == "Secret" else {}
        )
        values.update({k: str(v) for k, v in ((doc.get("data") if kind == "ConfigMap" else None) or {}).items()})
        values.update({k: str(v) for k, v in (doc.get("stringData") or {}).items()})
        return values

    def services_selecting(self, labels: dict[str, str]) -> list[str]:
        """The Services whose selector matches a pod's labels: the names other pods reach it by."""
        return [
            doc["metadata"]["name"]
            for doc in self.documents
            if doc["kind"] == "Service"
            and doc["spec"].get("selector")
            and all(labels.get(k) == v for k, v in doc["spec"]["selector"].items())
        ]


def container_environment(manifests: Manifests, container: dict[str, Any], pod: dict[str, str]) -> dict[str, str]:
    """The variables the kubelet gives the container: envFrom in order, then env (which wins)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        kind, ref = (
            ("ConfigMap", source["configMapRef"]) if "configMapRef" in source else ("Secret", source["secretRef"])
        )
        try:
            values = manifests.data(kind, ref["name"])
        except PodError:
            if ref.get("optional"):
                continue
            raise
        env.update({source.get("prefix", "") + k: v for k, v in values.items()})
    for var in container.get("env", []):
        env[var["name"]] = var["value"] if "value" in var else _value_from(manifests, var["valueFrom"], pod)
    return env


def _value_from(manifests: Manifests, source: dict[str, Any], pod: dict[str, str]) -> str:
    if "fieldRef" in source:
        path = source["fieldRef"]["fieldPath"]
        if path not in pod:
            raise PodError(f"fieldRef {path} is not one this helper provides ({sorted(pod)})")
        return pod[path]
    kind, ref = (
        ("Secret", source["secretKeyRef"]) if "secretKeyRef" in source else ("ConfigMap", source["configMapKeyRef"])
    )
    values = manifests.data(kind, ref["name"])
    if ref["key"] not in values:
        raise PodError(f"{kind} {ref['name']!r} has no key {ref['key']!r}")
    return values[ref["key"]]


@dataclass
class RunningPod:
    """A pod's sandbox and containers on the engine, with what its probes need."""

    name: str
    spec: dict[str, Any]
    sandbox: Container
    # When the kubelet would have started the containers: a startup probe's budget counts from here.
    started: float = field(default_factory=time.monotonic)
    containers: dict[str, Container] = field(default_factory=dict)
    terminating: float = 0.0
    host_ports: dict[int, int] = field(default_factory=dict)

    def probe(self, container_name: str, kind: str) -> str | None:
        """Run one probe of a container once: None if it passed, else why it failed."""
        spec = self.container_spec(container_name)[kind]
        timeout = spec.get("timeoutSeconds", PROBE_DEFAULTS["timeoutSeconds"])
        try:
            if "httpGet" in spec:
                return self._http(container_name, spec["httpGet"], timeout)
            if "tcpSocket" in spec:
                port = self.host_ports[self._port(container_name, spec["tcpSocket"]["port"])]
                socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
                return None
            if "exec" in spec:
                code, output = self.containers[container_name].exec_run(spec["exec"]["command"])
                return None if code == 0 else f"exit {code}: {output.decode(errors='replace')[-500:]}"
        except (OSError, httpx.HTTPError) as exc:
            return f"{type(exc).__name__}: {exc}"
        raise PodError(f"{container_name}: unsupported {kind} {sorted(spec)}")

    def _http(self, container_name: str, get: dict[str, Any], timeout: float) -> str | None:
        port = self.host_ports[self._port(container_name, get["port"])]
        headers = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}
        url = f"{get.get('scheme', 'HTTP').lower()}://127.0.0.1:{port}{get.get('path', '/')}"
        # The kubelet counts 200-399 as success and does not follow redirects off the pod.
        response = httpx.get(url, headers=headers, timeout=timeout, verify=False)
        return None if 200 <= response.status_code < 400 else f"{url}: {response.status_code} {response.text[:500]}"

    def _port(self, container_name: str, port: int | str) -> int:
        if isinstance(port, int):
            return port
        for declared in self.container_spec(container_name).get("ports", []):
            if declared.get("name") == port:
                return int(declared["containerPort"])
        raise PodError(f"{container_name} declares no port named {port!r}")

    def container_spec(self, name: str) -> dict[str, Any]:
        """The rendered spec of one of the pod's containers."""
        return next(c for c in self.spec["containers"] + self.spec.get("initContainers", []) if c["name"] == name)

    def wait_probe(self, container_name: str, kind: str, deadline: float) -> None:
        """Probe at the spec's period until it passes; fail (with the container's log) at `deadline` (monotonic)."""
        spec = self.container_spec(container_name)[kind]
        period = spec.get("periodSeconds", PROBE_DEFAULTS["periodSeconds"])
        while True:
            failure = self.probe(container_name, kind)
            if failure is None:
                return
            self.containers[container_name].reload()
            if self.containers[container_name].status != "running" or time.monotonic() > deadline:
                raise PodError(f"{self.name}/{container_name} {kind} failed: {failure}\n{self.logs(container_name)}")
            time.sleep(min(period, 2))

    def logs(self, container_name: str) -> str:
        """The container's output, last part."""
        return str(self.containers[container_name].logs(tail=60).decode(errors="replace"))

    def terminate(self) -> None:
        """Send SIGTERM to every container's PID 1, as the kubelet does when the pod is deleted."""
        self.terminating = time.time()
        for container in self.containers.values():
            container.kill(signal="SIGTERM")

    def wait_terminated(self) -> dict[str, tuple[int, float]]:
        """Each container's exit code and seconds from SIGTERM to its exit; one still running after the pod's
        grace period gets SIGKILL, as from the kubelet (so it reports 137)."""
        grace = self.spec.get("terminationGracePeriodSeconds", 30)
        results: dict[str, tuple[int, float]] = {}
        for name, container in self.containers.items():
            container.reload()
            while container.status == "running" and time.time() < self.terminating + grace:
                time.sleep(0.2)
                container.reload()
            if container.status == "running":
                container.kill(signal="SIGKILL")
            code = int(container.wait(timeout=30)["StatusCode"])
            container.reload()
            results[name] = (code, _timestamp(container.attrs["State"]["FinishedAt"]) - self.terminating)
        return results

    def remove(self) -> None:
        """Remove every container of the pod, the sandbox last."""
        for container in [*self.containers.values(), self.sandbox]:
            container.remove(force=True, v=True)


def _timestamp(docker_time: str) -> float:
    """The engine's RFC 3339 time (nanoseconds, Z) as a POSIX timestamp."""
    whole, _, fraction = docker_time.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp() + float(f"0.{fraction or 0}")


def start_pod(
    client: docker.DockerClient, network: Network, manifests: Manifests, template: dict[str, Any], pod_name: str
) -> RunningPod:
    """Start a pod template's sandbox, run its init containers to completion, then start its containers."""
    spec = template["spec"]
    labels = template["metadata"].get("labels", {})
    fields = {
        "metadata.name": pod_name,
        "metadata.namespace": "default",
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
    }
    ports = [p for c in spec["containers"] for p in c.get("ports", [])]
    aliases = [pod_name, *manifests.services_selecting(labels)]
    # The sandbox only holds the namespace, as the pause container does: any image with `sleep` serves.
    sandbox = client.containers.run(
        spec["containers"][0]["image"],
        entrypoint=["sleep", "infinity"],
        command=[],
        name=f"{network.name}-{pod_name}",
        hostname=pod_name,
        user=_user(spec, {}),
        read_only=True,
        # The kubelet runs the pod's probes, never an image's HEALTHCHECK.
        healthcheck={"test": ["NONE"]},
        detach=True,
        network=network.name,
        networking_config={network.name: client.api.create_endpoint_config(aliases=aliases)},
        ports={f"{p['containerPort']}/{p.get('protocol', 'TCP').lower()}": ("127.0.0.1", None) for p in ports},
        labels={"quartet.test": network.name},
    )
    pod = RunningPod(pod_name, spec, sandbox)
    try:
        sandbox.reload()
        for key, bindings in sandbox.attrs["NetworkSettings"]["Ports"].items():
            # The image's EXPOSEd ports are listed too, unbound: only the pod's own are published.
            if bindings:
                pod.host_ports[int(key.split("/")[0])] = int(bindings[0]["HostPort"])
        for init in spec.get("initContainers", []):
            container = _run_container(client, manifests, spec, init, pod, fields)
            result = container.wait(timeout=300)
            if result["StatusCode"] != 0:
                raise PodError(
                    f"{pod_name}: init container {init['name']} exited {result['StatusCode']}\n{pod.logs(init['name'])}"
                )
        pod.started = time.monotonic()
        for app in spec["containers"]:
            _run_container(client, manifests, spec, app, pod, fields)
    except BaseException:
        pod.remove()
        raise
    return pod


def _run_container(
    client: docker.DockerClient,
    manifests: Manifests,
    spec: dict[str, Any],
    container: dict[str, Any],
    pod: RunningPod,
    fields: dict[str, str],
) -> Container:
    security = container.get("securityContext", {})
    pod_security = spec.get("securityContext", {})
    image = client.images.get(container["image"])
    user = _user(spec, security)
    if (pod_security.get("runAsNonRoot") or security.get("runAsNonRoot")) and (
        user or image.attrs["Config"].get("User") or "0"
    ).split(":")[0] in ("0", "root"):
        raise PodError(f"{pod.name}/{container['name']}: runAsNonRoot, but the container would run as root")
    limit = container.get("resources", {}).get("limits", {}).get("memory")
    created = client.containers.run(
        container["image"],
        # As the kubelet: `command` replaces the image's ENTRYPOINT, `args` its CMD.
        entrypoint=container.get("command"),
        command=container.get("args"),
        name=f"{pod.sandbox.name}-{container['name']}",
        environment=container_environment(manifests, container, fields),
        user=user,
        group_add=[str(pod_security["fsGroup"])] if "fsGroup" in pod_security else None,
        read_only=bool(security.get("readOnlyRootFilesystem")),
        cap_drop=security.get("capabilities", {}).get("drop"),
        cap_add=security.get("capabilities", {}).get("add"),
        security_opt=["no-new-privileges"] if security.get("allowPrivilegeEscalation") is False else None,
        mem_limit=memory_bytes(limit) if limit else None,
        tmpfs=_empty_dirs(spec, container, pod.name),
        network_mode=f"container:{pod.sandbox.id}",
        healthcheck={"test": ["NONE"]},
        detach=True,
        labels={"quartet.test": pod.sandbox.name},
    )
    pod.containers[container["name"]] = created
    return created


def _user(spec: dict[str, Any], security: dict[str, Any]) -> str | None:
    merged = {**spec.get("securityContext", {}), **security}
    if "runAsUser" not in merged:
        return None
    return f"{merged['runAsUser']}:{merged['runAsGroup']}" if "runAsGroup" in merged else str(merged["runAsUser"])


def _empty_dirs(spec: dict[str, Any], container: dict[str, Any], pod_name: str) -> dict[str, str]:
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts: dict[str, str] = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "emptyDir" not in volume:
            raise PodError(f"{pod_name}: volume {mount['name']} is {sorted(volume)}; only emptyDir is run here")
        # An emptyDir is writable by every user of the pod, as the kubelet makes it.
        mounts[mount["mountPath"]] = "rw,mode=1777"
    return mounts
