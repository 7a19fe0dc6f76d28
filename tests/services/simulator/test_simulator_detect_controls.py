"""`detect_controls`, the one place the console's chaos panel and a run find the servers, workers and cluster."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from simulator import servers
from simulator.bootstrap import bundled_scenarios, make_simulation
from simulator.console import default_chaos
from simulator.scenario_io import load_scenario
from simulator.servers import ComposeCluster, ComposeServerControl, Controls, detect_controls
from simulator.settings import SimulatorSettings
from simulator.workers import ComposeWorkers, HostWorkers

BROKER = "localhost:19092"


@dataclass
class _Hooks:
    """The tooling's `quartet.servers` entry points, recording what each was asked."""

    compose: bool = False
    failing: set[str] = field(default_factory=set)
    asked: list[tuple[str, ...]] = field(default_factory=list)
    made: dict[tuple[str, ...], Any] = field(default_factory=dict)

    def __call__(self, name: str) -> Callable[..., Any] | None:
        def hook(*args: str) -> Any:
            self.asked.append((name, *args))
            if name in self.failing:
                raise RuntimeError(f"{name} broke")
            if name == "compose_running":
                return self.compose
            return self.made.setdefault((name, *args), object())

        return hook

    def names(self) -> list[str]:
        return [name for name, *_ in self.asked]


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> _Hooks:
    found = _Hooks()
    monkeypatch.setattr(servers, "host_hook", found)
    return found


@pytest.fixture
def docker(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The Docker clients handed out (plain markers: nothing is called on them while detecting)."""
    handed: list[object] = []

    def client() -> object:
        handed.append(object())
        return handed[-1]

    monkeypatch.setattr(servers, "docker_client", client)
    return handed


def _settings(tmp_path: Path, infra: str, **extra: Any) -> SimulatorSettings:
    return SimulatorSettings(infra=infra, kafka_bootstrap_servers=BROKER, runs_dir=tmp_path, **extra)


def test_natively_the_tooling_hooks_give_the_servers_workers_and_the_described_cluster(
    tmp_path: Path, hooks: _Hooks, docker: list[object]
) -> None:
    state = tmp_path / "cluster"
    found = detect_controls(_settings(tmp_path, "native", cluster_state=state))
    assert found.servers is hooks.made["native_control", BROKER]
    assert isinstance(found.workers, HostWorkers) and found.workers.host is hooks.made["native_workers", BROKER]
    assert found.cluster is hooks.made["native_cluster", str(state)]
    assert not found.compose and docker == []
    # `native` never asks whether Compose runs (the question costs a `docker info`).
    assert hooks.names() == ["native_control", "native_workers", "native_cluster"]


def test_the_cluster_is_looked_for_only_when_asked_and_described(tmp_path: Path, hooks: _Hooks) -> None:
    state = tmp_path / "cluster"
    unasked = detect_controls(_settings(tmp_path, "native", cluster_state=state), cluster=False)
    assert unasked.cluster is None and unasked.workers is not None
    undescribed = detect_controls(_settings(tmp_path, "native"))
    assert undescribed.cluster is None
    assert "native_cluster" not in hooks.names()


def test_under_compose_the_containers_are_controlled_through_one_docker_client_each(
    tmp_path: Path, hooks: _Hooks, docker: list[object]
) -> None:
    hooks.compose = True
    settings = _settings(tmp_path, "auto", compose_project="quartet", cluster_state=tmp_path / "ignored")
    found = detect_controls(settings, cut_kinds=("training",))
    assert found.compose
    assert isinstance(found.servers, ComposeServerControl) and found.servers.project == "quartet"
    assert isinstance(found.workers, ComposeWorkers) and found.workers.project == "quartet"
    assert isinstance(found.cluster, ComposeCluster) and found.cluster.cut_kinds == ("training",)
    assert [found.servers.client, found.workers.client, found.cluster.client] == docker
    # Compose was asked about once, and no native hook at all.
    assert hooks.names() == ["compose_running"]
    assert detect_controls(settings, cluster=False).cluster is None


def test_a_piece_that_cannot_be_had_is_none_with_a_warning_and_the_others_are_still_found(
    tmp_path: Path, hooks: _Hooks, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_engine() -> object:
        raise ConnectionError("no Docker engine answers")

    monkeypatch.setattr(servers, "docker_client", no_engine)
    with caplog.at_level(logging.WARNING, logger="simulator.servers"):
        compose = detect_controls(_settings(tmp_path, "compose"))
    assert compose == Controls(compose=True)
    assert [r.getMessage() for r in caplog.records] == [
        f"no control of {what}: no Docker engine answers"
        for what in ("the servers", "the workers", "the Kafka cluster")
    ]
    caplog.clear()
    hooks.failing = {"native_control"}
    with caplog.at_level(logging.WARNING, logger="simulator.servers"):
        native = detect_controls(_settings(tmp_path, "native", cluster_state=tmp_path / "c"))
    assert native.servers is None and native.workers is not None and native.cluster is not None
    assert [r.getMessage() for r in caplog.records] == ["no control of the servers: native_control broke"]


def test_given_pieces_are_kept_and_infra_none_asks_nothing(tmp_path: Path, hooks: _Hooks) -> None:
    theirs: Any = object()
    mine = HostWorkers(host=theirs)
    kept = detect_controls(_settings(tmp_path, "native"), given=Controls(servers=theirs, workers=mine))
    assert kept.servers is theirs and kept.workers is mine
    assert hooks.names() == []
    assert detect_controls(_settings(tmp_path, "none")) == Controls()
    assert hooks.names() == []


def test_the_console_and_a_run_find_the_same_controls_a_run_asking_for_the_cluster_only_for_cluster_faults(
    tmp_path: Path, hooks: _Hooks, docker: list[object]
) -> None:
    hooks.compose = True
    settings = _settings(tmp_path, "compose", database_url="postgresql://quartet@localhost:5432/quartet")
    panel = default_chaos(settings)
    assert isinstance(panel.servers, ComposeServerControl) and isinstance(panel.workers, ComposeWorkers)
    assert isinstance(panel.cluster, ComposeCluster) and panel.cluster.cut_kinds == ()
    demo = make_simulation(settings, load_scenario(bundled_scenarios()["demo"]))
    assert isinstance(demo.servers, ComposeServerControl) and isinstance(demo.worker_control, ComposeWorkers)
    assert demo.cluster is None
    assert demo.settings.rental_database_url == "postgresql://quartet@localhost:5432/rental"
    cluster = make_simulation(settings, load_scenario(bundled_scenarios()["chaos-cluster"]))
    assert isinstance(cluster.cluster, ComposeCluster) and cluster.cluster.cut_kinds
