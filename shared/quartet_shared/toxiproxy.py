"""A small typed client of Toxiproxy's HTTP API: create proxies, add and remove toxics.

It lives in the kernel because two installs use it: the tooling's native fault proxies (quartet_tools.toxiproxy)
and the simulator's Compose cluster, whose image does not carry the tooling. The PyPI client has not been
released since 2019.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx

from quartet_shared.net import free_port, host_port

Stream = Literal["upstream", "downstream"]
# The directions a toxic is added on, named once for the native cluster, the Compose cluster and the simulator.
ONE_WAY: tuple[Stream, ...] = ("downstream",)
BOTH_WAYS: tuple[Stream, ...] = ("upstream", "downstream")


class ToxiproxyClient:
    """Create proxies, add and remove toxics: what the fault tests and the simulator need of the HTTP API."""

    def __init__(self, url: str) -> None:
        self._http = httpx.Client(base_url=url, timeout=10)

    def create_proxy(self, name: str, upstream: str, listen_port: int | None = None, host: str = "127.0.0.1") -> int:
        """A proxy from `host`:`listen_port` (the loopback, a free port by default) to `upstream`; returns the port."""
        port = listen_port or free_port()
        body = {"name": name, "listen": host_port(host, port), "upstream": upstream, "enabled": True}
        self._http.post("/proxies", json=body).raise_for_status()
        return port

    def add_toxic(
        self, proxy: str, name: str, kind: str, attributes: dict[str, Any], stream: Stream = "downstream"
    ) -> None:
        """Add a toxic (`latency`, `bandwidth`, `timeout`, `reset_peer`, `slicer`, ...) to every connection."""
        body = {"name": name, "type": kind, "stream": stream, "toxicity": 1.0, "attributes": attributes}
        self._http.post(f"/proxies/{proxy}/toxics", json=body).raise_for_status()

    def remove_toxic(self, proxy: str, name: str, *, missing_ok: bool = False) -> None:
        """Remove one toxic; the proxy passes traffic as before. `missing_ok`: one already gone is no error."""
        response = self._http.delete(f"/proxies/{proxy}/toxics/{name}")
        if not (missing_ok and response.status_code == httpx.codes.NOT_FOUND):
            response.raise_for_status()

    def toxics(self, proxy: str) -> list[str]:
        """The names of the toxics on a proxy now."""
        response = self._http.get(f"/proxies/{proxy}/toxics")
        response.raise_for_status()
        return [str(toxic["name"]) for toxic in response.json()]

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._http.post("/reset").raise_for_status()

    def close(self) -> None:
        """Close the HTTP connection."""
        self._http.close()
