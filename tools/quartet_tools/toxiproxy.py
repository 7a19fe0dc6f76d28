"""Toxiproxy, the TCP fault proxy, between clients and each Kafka node: latency, bandwidth, black holes, resets.

The server and CLI are built once from the Go module proxy into ~/.cache/quartet (like helm and Compose), and
run on the loopback only; `quartet_shared.toxiproxy.ToxiproxyClient` talks to their HTTP API.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
from quartet_shared.net import host_port
from quartet_shared.toxiproxy import ToxiproxyClient

from quartet_tools.infra import Server, ensure_command, go_env, wait_for

TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2"
TOXIPROXY_VERSION = "v2.5.0"


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
    """toxiproxy-server with its API on `host`:`port`, the loopback unless told otherwise; the proxies its client
    makes listen on the loopback too (`ToxiproxyClient.create_proxy`)."""

    host: str = "127.0.0.1"

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the server and wait until its API answers."""
        if self.running():
            return
        binary = ensure_toxiproxy()
        self._spawn([str(binary), "-host", self.host, "-port", str(self.port)])
        wait_for(self.ready, f"toxiproxy on {self.url}", timeout_s, self.logfile)

    def ready(self) -> bool:
        """True when its API answers."""
        return httpx.get(f"{self.url}/version", timeout=2).status_code == 200

    @property
    def url(self) -> str:
        return f"http://{host_port(self.host, self.port)}"

    def client(self) -> ToxiproxyClient:
        """A client of this server's API."""
        return ToxiproxyClient(self.url)
