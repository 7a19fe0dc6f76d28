"""Dashboards, the Prometheus console, scrape configuration and alert rules, checked by the real promtool (the
pinned 3.x one and Debian's 2.42, which the Compose profile and `make metrics` run) and against what the services
export.

`promtool` is built once from the Go module proxy into ~/.cache/quartet (`make tools-install`), like helm. The
scrape configuration and rules go through `promtool check config` / `check rules`, each alert through
`promtool test rules` cases that fire and cases that stay quiet, and every metric a dashboard panel or a rule
reads must be one the services' registries export: the names come from Prometheus's own parser (promtool adds a
marker matcher to every selector of an expression; the names are those selectors').
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric
from quartet_tools import metrics

from tests.deploy.conftest import REPO, SERVICES
from tests.deploy.prometheus import RULES, run_debian_promtool, run_promtool

OBSERVABILITY = REPO / "deploy" / "observability"
PROMETHEUS_CONFIG = OBSERVABILITY / "prometheus" / "prometheus.yml"
RULE_TESTS = OBSERVABILITY / "prometheus" / "alerts.test.yaml"
DASHBOARDS = OBSERVABILITY / "grafana" / "dashboards"
PROVISIONING = OBSERVABILITY / "grafana" / "provisioning"
CONSOLE = OBSERVABILITY / "prometheus" / "consoles" / "quartet.html"
# Series Prometheus makes itself for every target, not the services.
PROMETHEUS_SERIES = frozenset({"up"})
# Grafana's variables, given a value of their kind so that the expression parses.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
# What a family of each type exposes (prometheus_client's exposition; a counter's family name has no _total).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}
MARKER = "quartet_selector_marker"


def _exposed(family: Metric) -> set[str]:
    return {family.name + suffix for suffix in SUFFIXES[family.type]}


@cache
def exported_metric_names() -> frozenset[str]:
    """Every sample name the services' processes can expose: each service's modules imported (so each metric it
    defines is registered in prometheus_client's registry), then each registered family's names."""
    for service in SERVICES:
        package = importlib.import_module(service.package)
        for module in pkgutil.walk_packages(package.__path__, f"{service.package}."):
            # Alembic's revision scripts run only inside a migration; they define no metrics.
            if ".migrations" not in module.name:
                importlib.import_module(module.name)
    return frozenset(name for family in REGISTRY.collect() for name in _exposed(family))


def metric_names(expr: str) -> set[str]:
    """The metric names an expression's selectors read, as Prometheus's parser finds them."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    out = run_promtool("--experimental", "promql", "label-matchers", "set", expr, MARKER, "1")
    assert out.returncode == 0, f"{expr!r} does not parse: {out.stderr}"
    selectors = re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\{[^{}]*" + MARKER + '="1"', out.stdout)
    assert selectors, f"promtool found no selector in {expr!r}"
    assert all(selectors), f"a selector without a metric name in {expr!r}"
    return set(selectors)


def rule_expressions() -> dict[str, str]:
    """Each rule's expression, by alert name and position."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {f"{rule['alert']}#{n}": rule["expr"] for g in groups for n, rule in enumerate(g["rules"])}


def dashboards() -> dict[str, dict[str, Any]]:
    """The provisioned dashboards, by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panel_expressions() -> dict[str, str]:
    """Each panel query's expression, by dashboard, panel and query."""
    return {
        f"{name} / {panel['title']} / {target['refId']}": target["expr"]
        for name, board in dashboards().items()
        for panel in board["panels"]
        for target in panel["targets"]
    }


def console_expressions() -> dict[str, str]:
    """Each expression of the console, by position: the first string of each `args` (a graph's line, a row, a
    figure) or `query`, but not of a graph's own args, which start with its id."""
    exprs = re.findall(r'(?<!"quartet_graph" \()(?:args|query) "([^"]*)"', CONSOLE.read_text())
    return {f"quartet.html #{n}": expr for n, expr in enumerate(exprs)}


def mounted_as_in_the_container(directory: Path) -> Path:
    """The configuration with the rules beside it as rules/alerts.yaml, as the profile mounts them; its path."""
    shutil.copy(PROMETHEUS_CONFIG, directory / "prometheus.yml")
    (directory / "rules").mkdir()
    shutil.copy(RULES, directory / "rules" / "alerts.yaml")
    return directory / "prometheus.yml"


# ---- promtool ----------------------------------------------------------------------------------------------


def test_promtool_accepts_the_scrape_configuration_with_the_rules_mounted_as_in_the_container(tmp_path: Path) -> None:
    """The Compose Prometheus's layout: the configuration, and the chart's rules beside it as rules/alerts.yaml."""
    out = run_promtool("check", "config", mounted_as_in_the_container(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rule_expressions())} rules found" in out.stdout + out.stderr


def test_every_compose_service_with_metrics_is_scraped_on_its_port() -> None:
    """Each Quartet container of the Compose file is a target of its service's job, at its port."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    scraped = {
        name: (job["job_name"], sd["port"])
        for job in config["scrape_configs"]
        for sd in job["dns_sd_configs"]
        for name in sd["names"]
    }
    ports = {s.program: s.port for s in SERVICES}
    quartet = {
        name: spec["image"].split("/")[1].split(":")[0]
        for name, spec in compose.items()
        if spec.get("image", "").startswith("quartet/") and spec["image"].split("/")[1].split(":")[0] in ports
    }
    long_running = {name: program for name, program in quartet.items() if compose[name].get("restart") != "no"}
    assert long_running, "no Quartet service found in docker-compose.yml"
    assert {name: scraped.get(name) for name in long_running} == {
        name: (program, ports[program]) for name, program in long_running.items()
    }


def test_promtool_accepts_the_rules() -> None:
    out = run_promtool("check", "rules", RULES)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rule_expressions())} rules found" in out.stdout


def test_each_alert_fires_and_stays_quiet_in_its_promtool_unit_tests() -> None:
    """`promtool test rules` passes, and every alert has a case where it fires and one where it does not."""
    out = run_promtool("test", "rules", RULE_TESTS)
    assert out.returncode == 0, out.stdout + out.stderr
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    alerts = {key.split("#")[0] for key in rule_expressions()}
    fires = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert fires == alerts, f"no firing case for {sorted(alerts - fires)}"
    assert quiet == alerts, f"no quiet case for {sorted(alerts - quiet)}"


def test_the_promtool_checks_are_not_vacuous(tmp_path: Path) -> None:
    """A rule with a broken expression fails `check rules`; a case expecting an alert that does not fire fails
    `test rules`."""
    broken = tmp_path / "broken.yaml"
    broken.write_text(RULES.read_text().replace("deriv(quartet_consumer_lag[10m])", "deriv(quartet_consumer_lag)"))
    assert run_promtool("check", "rules", broken).returncode != 0
    wrong = yaml.safe_load(RULE_TESTS.read_text())
    wrong["rule_files"] = [str(RULES)]
    wrong["tests"][0]["alert_rule_test"][0]["exp_alerts"] = [{"exp_labels": {"severity": "warning"}}]
    (tmp_path / "wrong.test.yaml").write_text(yaml.safe_dump(wrong))
    assert run_promtool("test", "rules", tmp_path / "wrong.test.yaml").returncode != 0


def test_debians_prometheus_2_42_accepts_the_compose_configuration_and_the_rules(tmp_path: Path) -> None:
    """The server the profile `observability` runs is Debian's 2.42, older than the pinned promtool: its own
    promtool checks the configuration (with the rules mounted as in the container) and runs the rule tests."""
    config = run_debian_promtool("check", "config", mounted_as_in_the_container(tmp_path))
    assert config.returncode == 0, config.stdout + config.stderr
    assert f"SUCCESS: {len(rule_expressions())} rules found" in config.stdout + config.stderr
    tested = run_debian_promtool("test", "rules", RULE_TESTS)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_debians_prometheus_accepts_the_native_configuration(tmp_path: Path) -> None:
    """`make metrics`'s generated configuration, with a targets file for a service and a worker of it."""
    server = metrics.NativePrometheus("prometheus", 9090, tmp_path)
    server.write_targets([("training-worker", "training-worker", 8001), ("training-worker", "worker-1", 8101)])
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(metrics.scrape_config(15, server.targets)))
    out = run_debian_promtool("check", "config", tmp_path / "prometheus.yml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rule_expressions())} rules found" in out.stdout + out.stderr
    groups = json.loads(server.targets.read_text())
    assert [group["labels"] for group in groups] == [
        {"job": "training-worker", "process": "training-worker"},
        {"job": "training-worker", "process": "worker-1"},
    ]
    assert [group["targets"] for group in groups] == [["127.0.0.1:8001"], ["127.0.0.1:8101"]]


def test_the_profile_runs_the_prometheus_image_with_the_repositorys_configuration_rules_and_console() -> None:
    """Only with `--profile observability`; the files mounted where the configuration and the image expect them
    (the rules as rules/alerts.yaml beside prometheus.yml, the console where Debian's server looks), published on
    the loopback by default."""
    from quartet_tools.images import IMAGES, OBSERVABILITY

    prometheus = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["prometheus"]
    image = IMAGES["prometheus"]
    assert OBSERVABILITY == ["prometheus"] and prometheus["profiles"] == ["observability"]
    assert (prometheus["image"], prometheus["build"]) == (image.tag, {"context": ".", "dockerfile": image.dockerfile})
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in prometheus["volumes"]}
    assert mounts["/etc/prometheus/prometheus.yml"] == f"./{PROMETHEUS_CONFIG.relative_to(REPO)}"
    assert mounts["/etc/prometheus/rules/alerts.yaml"] == f"./{RULES.relative_to(REPO)}"
    assert mounts["/etc/prometheus/consoles"] == f"./{CONSOLE.parent.relative_to(REPO)}"
    assert prometheus["ports"] == ["${QUARTET_PUBLISH_ADDR:-127.0.0.1}:9090:9090"]
    assert "rules/*.yaml" in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["rule_files"]


# ---- metric names ------------------------------------------------------------------------------------------


def test_the_services_export_the_metrics_the_alerts_and_dashboards_need() -> None:
    """The registry holds the kernel's and the services' own metrics (not only the process collector's)."""
    names = exported_metric_names()
    for name in ("quartet_messages_consumed_total", "quartet_consumer_up", "quartet_outbox_backlog"):
        assert name in names
    assert "quartet_handler_seconds_bucket" in names and "quartet_job_outcomes_total" in names


@pytest.mark.parametrize("where", sorted(rule_expressions()))
def test_every_metric_an_alert_reads_is_exported(where: str) -> None:
    used = metric_names(rule_expressions()[where])
    assert used - exported_metric_names() - PROMETHEUS_SERIES == set()


@pytest.mark.parametrize("where", sorted(panel_expressions()))
def test_every_metric_a_dashboard_panel_reads_is_exported(where: str) -> None:
    used = metric_names(panel_expressions()[where])
    assert used - exported_metric_names() == set()


@pytest.mark.parametrize("where", sorted(console_expressions()))
def test_every_metric_the_console_reads_is_exported(where: str) -> None:
    used = metric_names(console_expressions()[where])
    assert used - exported_metric_names() - PROMETHEUS_SERIES == set()


def test_the_console_check_sees_every_expression_of_the_console() -> None:
    """Every quoted string of the console that names a Quartet metric (not a template, not an attribute) is one
    the check reads; and there is one for each graph and each figure."""
    text = CONSOLE.read_text()
    quoted = re.findall(r'(?<!template )(?<!=)"([^"]*quartet_\w+[^"]*)"', text)
    assert set(quoted) <= set(console_expressions().values())
    graphs = text.count('template "quartet_graph"')
    assert graphs >= 17 and len(console_expressions()) >= graphs + 6


def test_the_name_check_sees_through_functions_and_aggregations() -> None:
    """What the parser reports for a nested expression: each selector's name once, functions and labels not."""
    expr = 'sum by (group) (rate(quartet_retries_total{topic!="x"}[$__rate_interval])) / on() group_left up'
    assert metric_names(expr) == {"quartet_retries_total", "up"}
    assert metric_names("histogram_quantile(0.9, sum by (le) (rate(quartet_handler_sec_bucket[5m])))") == {
        "quartet_handler_sec_bucket"
    }
    assert "quartet_handler_sec_bucket" not in exported_metric_names()


# ---- dashboards --------------------------------------------------------------------------------------------


def test_the_dashboards_cover_what_the_issue_asks_for() -> None:
    """Throughput, lag, handler latency, retries, dead letters, cache hit rate, outbox backlog, consumer stalls
    and job outcomes each have a panel reading their metric."""
    read = {name for expr in panel_expressions().values() for name in metric_names(expr)}
    wanted = {
        "quartet_messages_consumed_total",
        "quartet_messages_produced_total",
        "quartet_consumer_lag",
        "quartet_handler_seconds_bucket",
        "quartet_retries_total",
        "quartet_dead_letters_total",
        "quartet_cache_hits_total",
        "quartet_cache_misses_total",
        "quartet_outbox_backlog",
        "quartet_consumer_stalls_total",
        "quartet_job_outcomes_total",
    }
    assert wanted <= read, sorted(wanted - read)


def test_the_console_reads_what_the_dashboards_read() -> None:
    """The console is the dashboards for those without Grafana: every metric a panel reads, it reads too."""
    dashboards_read = {name for expr in panel_expressions().values() for name in metric_names(expr)}
    console_read = {name for expr in console_expressions().values() for name in metric_names(expr)}
    assert dashboards_read - console_read == set()


def test_the_dashboards_are_provisioned_from_the_provisioning_data_source() -> None:
    """Each panel and query names the provisioned data source's uid; each dashboard has its own uid; the
    provider loads the folder the dashboards are mounted into."""
    (source,) = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())["datasources"]
    assert source["type"] == "prometheus"
    boards = dashboards()
    assert len(boards) >= 2 and len({b["uid"] for b in boards.values()}) == len(boards)
    for name, board in boards.items():
        assert name == f"{board['uid']}.json"
        for panel in board["panels"]:
            for ref in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
                assert ref == {"type": "prometheus", "uid": source["uid"]}, f"{name}: {panel['title']}"
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "quartet.yaml").read_text())["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/var/lib/grafana/dashboards")
