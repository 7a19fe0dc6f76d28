"""Only tests marked `integration` may ask for the servers, so `make test-fast` never starts one."""

from __future__ import annotations

from typing import Protocol

import pytest

# The session fixtures that start servers (tests/conftest.py).
SERVER_FIXTURES = frozenset({"servers", "kafka_cluster"})


class _Item(Protocol):
    nodeid: str
    fixturenames: list[str]

    def get_closest_marker(self, name: str) -> object | None: ...


def refuse_servers_unless_integration(item: _Item | pytest.Item) -> None:
    """Fail `item` before its fixtures are set up when it asks for a server without the `integration` mark."""
    wanted = SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if wanted and item.get_closest_marker("integration") is None:
        pytest.fail(
            f"{item.nodeid} uses {', '.join(sorted(wanted))} but is not marked integration: "
            "mark it (pytestmark = pytest.mark.integration) or give it fakes",
            pytrace=False,
        )
