"""Toxiproxy, the TCP fault proxy, between clients and each Kafka node: latency, bandwidth, black holes, resets.

The server and CLI are built once from the Go module proxy into ~/.cache/quartet (like helm and Compose), and
run on the loopback only. `ToxiproxyClient` is a small typed client of its HTTP API (the PyPI client has not
been released since 2019).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
from quartet_shared.net import free_port

from quartet_tools.infra import Server, ensure_command, go_env, wait_for

TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2"
TOXIPROXY_VERSION = "v2.5.0"
Stream = Literal["upstream", "downstream"]


def toxiproxy_dir() -> Path:
    """Where the pinned server and CLI live: a cache outside the repository, one directory per version."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "quartet" / "toxiproxy" / TOXIPROXY_VERSION


def ensure_toxiproxy() -> Path:
    """Build the pinned toxiproxy-server and toxiproxy-cli once (under a minute), then reuse them."""
    where = toxiproxy_dir()
    server, cli = where / "toxiproxy-server", where / "toxiproxy-cli"
    if server.exists() and cli.exists():
        return server
    ensure_command("go", "golang-go")
    build = where / "build"
    build.mkdir(parents=True, exist_ok=True)
    env = {**go_env(), "GOBIN": str(build)}
    commands = [f"{TOXIPROXY_MODULE}/cmd/server@{TOXIPROXY_VERSION}", f"{TOXIPROXY_MODULE}/cmd/cli@{TOXIPROXY_VERSION}"]
    subprocess.run(["go", "install", *commands], env=env, cwd=where, check=True, capture_output=True)
    # `go install` names the binaries after their directories (server, cli).
    (build / "server").replace(server)
    (build / "cli").replace(cli)
    return server


@dataclass
class ToxiproxyServer(Server):
    """toxiproxy-server with its API on 127.0.0.1:`port`; the proxies it makes listen on the loopback too."""

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the server and wait until its API answers."""
        if self.running():
            return
        binary = ensure_toxiproxy()
        self._spawn([str(binary), "-host", "127.0.0.1", "-port", str(self.port)])
        wait_for(self.ready, f"toxiproxy on 127.0.0.1:{self.port}", timeout_s, self.logfile)

    def ready(self) -> bool:
        """True when its API answers."""
        return httpx.get(f"{self.url}/version", timeout=2).status_code == 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> ToxiproxyClient:
        """A client of this server's API."""
        return ToxiproxyClient(self.url)


class ToxiproxyClient:
    """Create proxies, add and remove toxics: what the fault tests and the simulator need of the HTTP API."""

    def __init__(self, url: str) -> None:
        self._http = httpx.Client(base_url=url, timeout=10)

    def create_proxy(self, name: str, upstream: str, listen_port: int | None = None) -> int:
        """A proxy from 127.0.0.1:`listen_port` (a free one by default) to `upstream`; returns the port."""
        port = listen_port or free_port()
        body = {"name": name, "listen": f"127.0.0.1:{port}", "upstream": upstream, "enabled": True}
        self._http.post("/proxies", json=body).raise_for_status()
        return port

    def add_toxic(
        self, proxy: str, name: str, kind: str, attributes: dict[str, Any], stream: Stream = "downstream"
    ) -> None:
        """Add a toxic (`latency`, `bandwidth`, `timeout`, `reset_peer`, `slicer`, ...) to every connection."""
        body = {"name": name, "type": kind, "stream": stream, "toxicity": 1.0, "attributes": attributes}
        self._http.post(f"/proxies/{proxy}/toxics", json=body).raise_for_status()

    def remove_toxic(self, proxy: str, name: str) -> None:
        """Remove one toxic; the proxy passes traffic as before."""
        self._http.delete(f"/proxies/{proxy}/toxics/{name}").raise_for_status()

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
