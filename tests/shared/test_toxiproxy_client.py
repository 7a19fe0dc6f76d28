"""The typed Toxiproxy client against a real toxiproxy-server on the loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from quartet_shared.toxiproxy import ToxiproxyClient
from quartet_tools.infra import free_port
from quartet_tools.toxiproxy import ToxiproxyServer

pytestmark = pytest.mark.integration


@pytest.fixture
def toxiproxy(tmp_path: Path) -> Iterator[ToxiproxyClient]:
    server = ToxiproxyServer("toxiproxy", free_port(), tmp_path)
    server.start()
    client = server.client()
    try:
        yield client
    finally:
        client.close()
        server.stop()


def test_a_toxic_removed_twice_is_an_error_unless_it_may_be_missing(toxiproxy: ToxiproxyClient) -> None:
    toxiproxy.create_proxy("node-1", f"127.0.0.1:{free_port()}")
    toxiproxy.add_toxic("node-1", "slow-downstream", "latency", {"latency": 200}, "downstream")
    assert toxiproxy.toxics("node-1") == ["slow-downstream"]
    toxiproxy.remove_toxic("node-1", "slow-downstream")
    assert toxiproxy.toxics("node-1") == []
    toxiproxy.remove_toxic("node-1", "slow-downstream", missing_ok=True)
    with pytest.raises(httpx.HTTPStatusError):
        toxiproxy.remove_toxic("node-1", "slow-downstream")
