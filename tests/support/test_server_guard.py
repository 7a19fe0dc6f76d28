"""The guard that keeps `make test-fast` server-free."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.support.server_guard import refuse_servers_unless_integration


@dataclass
class Item:
    """What the guard reads of a collected test."""

    fixturenames: list[str]
    marks: set[str] = field(default_factory=set)
    nodeid: str = "tests/x.py::test_x"

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.marks else None


@pytest.mark.parametrize("fixture", ["servers", "kafka_cluster"])
def test_a_test_asking_for_a_server_without_the_mark_fails_naming_it(fixture: str) -> None:
    with pytest.raises(pytest.fail.Exception, match=f"tests/x.py::test_x uses {fixture} but is not marked integration"):
        refuse_servers_unless_integration(Item(["tmp_path", fixture]))


def test_marked_tests_and_tests_without_servers_pass(request: pytest.FixtureRequest) -> None:
    refuse_servers_unless_integration(Item(["servers", "settings"], {"integration"}))
    refuse_servers_unless_integration(Item(["tmp_path"]))
    refuse_servers_unless_integration(request.node)
