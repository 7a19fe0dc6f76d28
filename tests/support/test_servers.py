"""How the session's servers are chosen: natively unless containers are asked for by name."""

from __future__ import annotations

import pytest

from tests.support.servers import INFRA_VARIABLE, infra_choice


def test_servers_are_native_unless_containers_are_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    # A Docker engine answering (DOCKER_HOST set) must not change what a run tests.
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.delenv(INFRA_VARIABLE, raising=False)
    assert infra_choice() == "native"
    monkeypatch.setenv(INFRA_VARIABLE, "")
    assert infra_choice() == "native"
    monkeypatch.setenv(INFRA_VARIABLE, "containers")
    assert infra_choice() == "containers"


def test_a_choice_naming_neither_way_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INFRA_VARIABLE, "docker")
    with pytest.raises(ValueError, match="QUARTET_TEST_INFRA='docker': expected one of native, containers"):
        infra_choice()
