"""The Helm chart: linted and rendered by the real `helm`, every manifest validated, and its settings checked
against the services' settings classes and the contract's ports.

`helm` is built once from the Go module proxy into ~/.cache/quartet (`make tools-install`); Kubernetes kinds
are validated with `kubernetes-validate`, KEDA's against its vendored CRD schemas (deploy/schemas).
"""

from __future__ import annotations

import copy
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from quartet_tools.infra import ROLE_DATABASES, SERVICE_ROLES
from sqlalchemy.engine import make_url

from tests.deploy.chart import CHART, helm
from tests.deploy.conftest import (
    BY_PROGRAM,
    LIBPQ_VARIABLES,
    REPO,
    SERVICE_ROLE,
    Roles,
    load_with,
    require_roles,
    required_variables,
    settings_class,
    variable_names,
)
from tests.deploy.manifests import KUBERNETES_VERSION, documents, validate
from tests.deploy.prometheus import RULES, run_promtool

# Every way the chart is meant to be installed, and one that turns every option on.
VALUES: dict[str, list[str]] = {
    "defaults": [],
    "strimzi": ["-f", str(REPO / "deploy" / "k8s" / "values-strimzi.yaml")],
    "external": ["-f", str(REPO / "deploy" / "k8s" / "values-external.yaml")],
    "everything": [
        "-f",
        str(REPO / "deploy" / "k8s" / "values-external.yaml"),
        "--set",
        "services.simulator.enabled=true,services.rental.workers.worker.keda.enabled=true,"
        "services.rental.secretEnv.RENTAL_JWT_SECRET=local-only-placeholder-of-32-characters",
    ],
    # The Prometheus Operator's resources: a ServiceMonitor and the alert rules as a PrometheusRule.
    "monitoring": [
        "--set",
        "services.simulator.enabled=true,monitoring.serviceMonitor.enabled=true,"
        "monitoring.prometheusRule.enabled=true,monitoring.serviceMonitor.labels.release=kube-prometheus-stack",
    ],
    # Passwords the chart keeps in its own Secrets (local and test clusters).
    "chart-passwords": [
        "--set",
        "services.simulator.enabled=true,database.passwords.training=local-only-t,"
        "database.passwords.planning=local-only-p,database.passwords.rental=local-only-r,"
        "database.passwords.simulator=local-only-s",
    ],
}


def consumer_groups() -> dict[str, tuple[str, str]]:
    """What each worker really consumes, from the services' own wiring: chart key -> (group, topic)."""
    from path_planner.bootstrap import bootstrap as planner
    from path_planner.settings import PlannerSettings
    from rental_manager.entrypoints.worker import COMMANDS_GROUP
    from rental_manager.settings import RentalSettings
    from training_worker.bootstrap import bootstrap as training
    from training_worker.settings import TrainingSettings

    groups: dict[str, tuple[str, str]] = {}
    for key, wire, cls in (("training", training, TrainingSettings), ("planner", planner, PlannerSettings)):
        # Wiring connects to nothing; an in-memory database keeps it off the disk.
        service = wire(cls(database_url="sqlite://", _env_file=None))
        try:
            worker = service.worker()
            groups[key] = (worker.runner.group, worker.kind.topics.jobs)
        finally:
            service.close()
    rental = RentalSettings(_env_file=None)
    groups["rental"] = (COMMANDS_GROUP, f"{rental.topic_prefix}rental.commands")
    return groups


@cache
def render(values: str) -> list[dict[str, Any]]:
    """`helm template` with one of the value sets."""
    out = subprocess.run(
        [str(helm()), "template", "quartet", str(CHART), "--kube-version", KUBERNETES_VERSION, *VALUES[values]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return documents(out.stdout)


def kinds(values: str, kind: str) -> list[dict[str, Any]]:
    """The rendered documents of one kind."""
    return [doc for doc in render(values) if doc["kind"] == kind]


def workloads(values: str) -> list[dict[str, Any]]:
    """Deployments and StatefulSets."""
    return [doc for doc in render(values) if doc["kind"] in ("Deployment", "StatefulSet")]


def program_of(workload: dict[str, Any]) -> str:
    """The Quartet service a workload runs."""
    return str(workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"])


def container_env(values: str, container: dict[str, Any]) -> dict[str, str]:
    """What the container's process sees, with Secret references and pod fields given stand-in values."""
    by_name = {(doc["kind"], doc["metadata"]["name"]): doc for doc in render(values)}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(by_name[("ConfigMap", source["configMapRef"]["name"])]["data"])
        elif ("Secret", source["secretRef"]["name"]) in by_name:
            env.update(by_name[("Secret", source["secretRef"]["name"])].get("stringData") or {})
    for var in container.get("env", []):
        env[var["name"]] = str(var["value"]) if "value" in var else f"from-{next(iter(var['valueFrom']))}"
    return env


@pytest.mark.parametrize("values", sorted(VALUES))
def test_chart_lints(values: str) -> None:
    """`helm lint --strict` passes with every value set."""
    out = subprocess.run(
        [str(helm()), "lint", "--strict", str(CHART), "--kube-version", KUBERNETES_VERSION, *VALUES[values]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("values", sorted(VALUES))
def test_rendered_manifests_are_valid(values: str) -> None:
    """Every rendered manifest validates against Kubernetes' schemas (strict) or its CRD's schema."""
    problems = [p for doc in render(values) for p in validate(doc)]
    assert not problems, "\n".join(problems)


def test_the_manifest_check_rejects_a_misspelt_field() -> None:
    """The validation is not vacuous: a misspelt probe field in a Deployment fails it."""
    deployment = copy.deepcopy(kinds("defaults", "Deployment")[0])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinessprobe"] = container.pop("readinessProbe")
    assert validate(deployment)


def test_each_service_has_an_api_deployment_and_worker_statefulsets() -> None:
    """Per service: a Deployment for the API; a StatefulSet per worker role (and the rental relay)."""
    roles: dict[str, dict[str, str]] = {}
    for workload in workloads("everything"):
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        roles.setdefault(program_of(workload), {})[container["args"][0]] = workload["kind"]
    assert roles == {
        "training-worker": {"api": "Deployment", "worker": "StatefulSet"},
        "path-planner": {"api": "Deployment", "worker": "StatefulSet"},
        "rental-manager": {"api": "Deployment", "worker": "StatefulSet", "relay": "StatefulSet"},
        "simulator": {"api": "Deployment"},
    }


@pytest.mark.parametrize("program", sorted(BY_PROGRAM))
def test_workloads_run_roles_their_service_has(program: str, service_roles: dict[str, Roles]) -> None:
    """Every container and init container runs a role the service's console script accepts."""
    wanted: set[str] = set()
    for workload in workloads("everything"):
        if program_of(workload) == program:
            pod = workload["spec"]["template"]["spec"]
            wanted |= {c["args"][0] for c in pod["containers"] + pod.get("initContainers", [])}
    assert wanted
    require_roles(program, wanted, service_roles)


@pytest.mark.parametrize("values", sorted(VALUES))
def test_probes_ports_and_shutdown(values: str) -> None:
    """Probes on /healthz and /readyz at the contract's port; 35 s to stop; non-root, read-only root."""
    for workload in workloads(values):
        pod = workload["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        port = BY_PROGRAM[program_of(workload)].port
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert pod["terminationGracePeriodSeconds"] > 30
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


@pytest.mark.parametrize("values", sorted(VALUES))
def test_containers_get_the_settings_their_service_reads(values: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every variable without a default is provided, every variable given is a setting the service reads
    (or libpq's), and the service's settings load from exactly that environment, on the contract's port."""
    for workload in workloads(values):
        service = BY_PROGRAM[program_of(workload)]
        cls = settings_class(service.package)
        pod = workload["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            env = container_env(values, container)
            missing = required_variables(cls) - set(env)
            assert not missing, f"{workload['metadata']['name']} lacks {sorted(missing)}"
            unknown = set(env) - set(variable_names(cls)) - LIBPQ_VARIABLES
            assert not unknown, f"{workload['metadata']['name']} sets {sorted(unknown)}, unknown to {cls.__name__}"
            settings = load_with(cls, env, monkeypatch)
            assert getattr(settings, "port", None) == service.port
            # A pod's interfaces are its own: loopback (the services' default) would be unreachable by the probes.
            assert getattr(settings, "host", None) == "0.0.0.0"
            assert settings.topic_replication_factor == 3
            instance = next(v for v in container["env"] if v["name"].endswith("INSTANCE_ID"))
            assert instance["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_external_values_pass_sasl_and_tls_through() -> None:
    """SASL_SSL, the mechanism and user, the password from its Secret, the CA mounted where the setting points."""
    for workload in workloads("external"):
        pod = workload["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = container_env("external", container)
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["KAFKA_SASL_USERNAME"] == "quartet"
        password = next(v for v in container["env"] if v["name"] == "KAFKA_SASL_PASSWORD")
        assert password["valueFrom"]["secretKeyRef"] == {"name": "quartet-kafka", "key": "password"}
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert env["KAFKA_SSL_CAFILE"] == f"{mounts['kafka-ca']}/ca.crt"
        assert env["PGSSLROOTCERT"] == f"{mounts['postgres-ca']}/ca.crt" and env["PGSSLMODE"] == "verify-full"
        assert "password" not in env["DATABASE_URL"] and ":" not in env["DATABASE_URL"].split("@")[0][13:]
    (auth,) = kinds("external", "TriggerAuthentication")
    refs = {r["parameter"]: r["name"] for r in auth["spec"]["secretTargetRef"]}
    assert refs == {"password": "quartet-kafka", "ca": "quartet-kafka-ca"}


def test_no_secret_value_is_rendered_into_a_configmap() -> None:
    """Passwords and the Redis URL live in Secrets; ConfigMaps hold nothing secret."""
    for values in VALUES:
        for config in kinds(values, "ConfigMap"):
            for var in config["data"]:
                assert not var.endswith(("PASSWORD", "SECRET")) and var != "REDIS_URL", f"{values}: {var}"


@pytest.mark.parametrize("values", sorted(VALUES))
def test_disruption_budgets_and_autoscalers(values: str) -> None:
    """A PDB for every workload, an HPA for every API that autoscales, and an HPA never fights KEDA."""
    docs = render(values)
    pdb_selectors = [d["spec"]["selector"]["matchLabels"] for d in docs if d["kind"] == "PodDisruptionBudget"]
    hpa_targets = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    scaled = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "ScaledObject"}
    for workload in workloads(values):
        assert workload["spec"]["selector"]["matchLabels"] in pdb_selectors, workload["metadata"]["name"]
        name = workload["metadata"]["name"]
        if workload["kind"] == "Deployment" and name in hpa_targets:
            assert "replicas" not in workload["spec"], f"{name}: an HPA owns the replica count"
        if workload["kind"] == "StatefulSet":
            assert name not in hpa_targets
            assert ("replicas" in workload["spec"]) != (name in scaled), f"{name}: KEDA or a fixed count"
    for values_hpa in kinds(values, "HorizontalPodAutoscaler"):
        assert values_hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"


def test_keda_scales_workers_on_the_consumer_group_lag_they_really_have() -> None:
    """Each worker's ScaledObject watches the group and topic the service's own wiring consumes with."""
    scaled_objects = {d["spec"]["scaleTargetRef"]["name"]: d for d in kinds("everything", "ScaledObject")}
    groups = consumer_groups()
    assert set(scaled_objects) == {f"quartet-{key}-worker" for key in groups}
    for key, (group, topic) in groups.items():
        scaled = scaled_objects[f"quartet-{key}-worker"]
        assert scaled["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        assert (trigger["metadata"]["consumerGroup"], trigger["metadata"]["topic"]) == (group, topic)
        assert trigger["authenticationRef"]["name"] == "quartet-kafka"
        assert scaled["spec"]["maxReplicaCount"] <= 6, "more workers than partitions would idle"


@pytest.mark.parametrize("values", sorted(VALUES))
def test_rental_pods_share_one_token_key(values: str) -> None:
    """RENTAL_JWT_SECRET reaches every rental pod from one Secret: the chart's own (generated once) or the
    operator's `secretEnvFrom`; otherwise each pod would sign tokens the others reject."""
    sources = set()
    for workload in workloads(values):
        if program_of(workload) != "rental-manager":
            continue
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        env = container_env(values, container)
        secret_refs = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
        if "RENTAL_JWT_SECRET" in env:
            assert len(env["RENTAL_JWT_SECRET"]) >= 32
            sources.add("chart")
        else:
            assert len(secret_refs) == 2, f"{workload['metadata']['name']} has no source of RENTAL_JWT_SECRET"
            sources.add(secret_refs[-1])
    assert len(sources) == 1, sources


@pytest.mark.parametrize("values", ["strimzi", "chart-passwords"])
def test_each_service_connects_as_its_own_role_with_its_own_password(values: str) -> None:
    """DATABASE_URL names the service's role and database; PGPASSWORD is that role's, from the existing Secret's
    key named after the role or from the chart's Secret; the simulator reads rental as its own role."""
    seen = set()
    for workload in workloads(values):
        role = SERVICE_ROLE[program_of(workload)]
        pod = workload["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            env = container_env(values, container)
            urls = [make_url(v) for k, v in env.items() if k.endswith("DATABASE_URL")]
            assert urls, workload["metadata"]["name"]
            for url in urls:
                assert url.username == role and url.password is None, workload["metadata"]["name"]
                assert url.database == ROLE_DATABASES[role], workload["metadata"]["name"]
            if values == "strimzi":
                ref = next(v for v in container["env"] if v["name"] == "PGPASSWORD")["valueFrom"]["secretKeyRef"]
                assert ref == {"name": "quartet-postgres", "key": role}
            else:
                assert env["PGPASSWORD"] == f"local-only-{role[0]}"
            seen.add(role)
    assert seen == ({"training", "planning", "rental"} if values == "strimzi" else set(SERVICE_ROLES))


def test_monitoring_resources_are_rendered_only_when_asked() -> None:
    """The Prometheus Operator's kinds need its CRDs: off by default, on with the monitoring values."""
    for values in VALUES:
        found = {d["kind"] for d in render(values)} & {"ServiceMonitor", "PrometheusRule"}
        assert found == ({"ServiceMonitor", "PrometheusRule"} if values == "monitoring" else set()), values


def test_the_service_monitor_scrapes_every_service_of_the_release_on_its_metrics_port() -> None:
    """Its selector matches every Service the chart renders (each API's and each worker role's), each of which
    has the port the endpoint names; the labels a Prometheus selects by are passed through."""
    (monitor,) = kinds("monitoring", "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    wanted = monitor["spec"]["selector"]["matchLabels"]
    services = kinds("monitoring", "Service")
    assert {program_of_service(s) for s in services} == set(BY_PROGRAM)
    for service in services:
        labels = service["metadata"]["labels"]
        assert wanted.items() <= labels.items(), service["metadata"]["name"]
        ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
        assert ports.get(endpoint["port"]) == BY_PROGRAM[program_of_service(service)].port
    other = copy.deepcopy(services[0])
    other["metadata"]["labels"]["app.kubernetes.io/instance"] = "another-release"
    assert not wanted.items() <= other["metadata"]["labels"].items()


def program_of_service(service: dict[str, Any]) -> str:
    """The Quartet service a Service fronts."""
    return str(service["metadata"]["labels"]["app.kubernetes.io/name"])


def test_the_prometheus_rule_holds_the_alert_rules_and_promtool_accepts_them(tmp_path: Path) -> None:
    """The PrometheusRule's groups are files/alerts.yaml's, unchanged by the templating, and pass `check rules`."""
    (rule,) = kinds("monitoring", "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump(rule["spec"]))
    out = run_promtool("check", "rules", rendered)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_monitoring_kinds_are_checked_against_the_operators_schema() -> None:
    """The vendored ServiceMonitor and PrometheusRule schemas are applied: a misspelt field fails each."""
    (monitor,) = copy.deepcopy(kinds("monitoring", "ServiceMonitor"))
    assert not validate(monitor)
    monitor["spec"]["endpoints"][0]["scrapeInterval"] = monitor["spec"]["endpoints"][0].pop("interval")
    assert validate(monitor)
    (rule,) = copy.deepcopy(kinds("monitoring", "PrometheusRule"))
    assert not validate(rule)
    rule["spec"]["groups"][0]["rules"][0]["expression"] = rule["spec"]["groups"][0]["rules"][0].pop("expr")
    assert validate(rule)
