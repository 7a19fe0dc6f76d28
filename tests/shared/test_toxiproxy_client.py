"""The typed Toxiproxy client against a real toxiproxy-server on the loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from quartet_shared.toxiproxy import ToxiproxyClient
from quartet_tools.infra import free_port
from quartet_tools.toxiproxy import ToxiproxyServer

from tests.support.listening import listening_addresses

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ToxiproxyServer]:
    server = ToxiproxyServer("toxiproxy", free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def toxiproxy(server: ToxiproxyServer) -> Iterator[ToxiproxyClient]:
    client = server.client()
    try:
        yield client
    finally:
        client.close()


def test_the_server_and_its_proxies_listen_on_the_loopback_only(
    server: ToxiproxyServer, toxiproxy: ToxiproxyClient
) -> None:
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert listening_addresses(server.port) == {"127.0.0.1"}
    port = toxiproxy.create_proxy("node-1", f"127.0.0.1:{free_port()}")
    assert listening_addresses(port) == {"127.0.0.1"}


def test_told_otherwise_the_server_and_a_proxy_listen_where_they_are_told(tmp_path: Path) -> None:
    server = ToxiproxyServer("toxiproxy", free_port(), tmp_path, host="::1")
    server.start()
    client = server.client()
    try:
        assert server.url == f"http://[::1]:{server.port}"
        assert listening_addresses(server.port) == {"::1"}
        port = client.create_proxy("node-1", f"127.0.0.1:{free_port()}", host="::1")
        assert listening_addresses(port) == {"::1"}
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
