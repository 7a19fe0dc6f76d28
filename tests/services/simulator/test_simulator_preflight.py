"""Preflight: every part a scenario needs that is not there is named, with where it was sought."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from simulator import preflight
from simulator.preflight import PreflightError, check, tcp_reachable
from simulator.settings import SimulatorSettings

from tests.services.simulator.preflight import problems, scenario


def test_a_ready_system_passes(broker_up: None) -> None:
    assert problems(scenario()) == []


def test_a_kind_with_no_worker_is_named(broker_up: None) -> None:
    (problem,) = problems(scenario(), members=lambda groups: dict.fromkeys(groups, 0))
    assert problem.startswith("no training worker is running: consumer group 'training.jobs-worker' has no members")


def test_server_faults_without_control_are_named(broker_up: None) -> None:
    found = problems(scenario([{"kind": "broker_restart", "at_s": 1}]))
    assert found == [
        "broker and Redis faults need control of the servers: none found (run against `make up`'s stack, "
        "or set SIMULATOR_INFRA=native|compose)"
    ]
    assert problems(scenario([{"kind": "broker_restart", "at_s": 1}]), has_server_control=True) == []


def test_worker_faults_need_workers_under_control(broker_up: None) -> None:
    faults = [{"kind": "kill_worker", "at_s": 1, "target": "training"}]
    (problem,) = problems(scenario(faults))
    assert problem.startswith("faults[0] (kill_worker, target training) needs workers under control")
    assert problems(scenario(faults), controlled={"training"}) == []


def test_rental_problems_are_added(broker_up: None) -> None:
    found = problems(scenario(rental=True), rental_needed=lambda: ["the rental manager at x is unreachable"])
    assert found == ["the rental manager at x is unreachable"]


def test_an_unreachable_broker_is_named_and_workers_are_not_probed() -> None:
    probed: list[object] = []
    found = problems(scenario(), members=lambda groups: probed.append(groups) or {})
    assert len(found) == 1 and found[0].startswith("Kafka at 127.0.0.1:1 is unreachable")
    assert probed == []


def test_tcp_reachability_says_why() -> None:
    assert "refused" in (tcp_reachable("127.0.0.1:1") or "").lower()
    assert tcp_reachable("nonsense") is not None


def test_managed_workers_databases_are_checked_with_their_own_roles(
    broker_up: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A managed kind's own database URL is the one probed, and its password is never echoed."""
    monkeypatch.setattr(preflight, "redis_problem", lambda _url: None)
    settings = SimulatorSettings(
        kafka_bootstrap_servers="127.0.0.1:1",
        worker_database_url_training=SecretStr("postgresql://training:s3cret@127.0.0.1:1/training"),
    )
    with pytest.raises(PreflightError) as caught:
        check(
            settings,
            scenario(),
            worker_groups={"training": "training.jobs-worker"},
            managed={"training"},
            controlled={"training"},
            has_server_control=False,
            members=lambda groups: dict.fromkeys(groups, 1),
        )
    (problem,) = caught.value.problems
    assert problem.startswith("the training workers' database at postgresql://training@127.0.0.1:1/training is")
    assert "s3cret" not in problem
