"""Prometheus for Quartet: Debian's server natively (`make metrics`), or the Compose profile `observability`.

Debian bookworm's `prometheus` (2.42) serves the classic web UI (graph, alerts, targets) and console templates:
Quartet's console (deploy/observability/prometheus/consoles/quartet.html) draws the Grafana dashboards' panels
with Debian's console library (prom.lib) and the graph helpers of its web assets. Natively the package and the
packages of its web assets are unpacked into `.local/prometheus/` (`apt-get download`, `dpkg-deb -x`) rather
than installed: the package's maintainer scripts would enable a system service on every interface, and the
server `make metrics` runs listens on 127.0.0.1 only. It scrapes what `make up` runs natively, each service's
API and each of its worker processes (file-based discovery, rewritten by `make up`), and evaluates the alert
rules (deploy/helm/quartet/files/alerts.yaml). Its state lives under `.local/run/metrics/`.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from quartet_tools import engine
from quartet_tools.infra import (
    LOCAL,
    ROOT,
    STATE_DIR,
    Server,
    apt_update,
    compose_active,
    compose_command,
    run_action,
    run_captured,
    start_port,
    wait_for,
)

PACKAGE = "prometheus"
UNPACKED = LOCAL / "prometheus"
ROOTFS = UNPACKED / "root"
OBSERVABILITY = ROOT / "deploy" / "observability" / "prometheus"
CONSOLES = OBSERVABILITY / "consoles"
CONSOLE_LIBRARY = OBSERVABILITY / "console_libraries" / "quartet.lib"
RULES = ROOT / "deploy" / "helm" / "quartet" / "files" / "alerts.yaml"
# Where Debian's package puts its console library (an example, beside the example consoles) and the web assets.
DEBIAN_LIBRARY = Path("usr/share/doc/prometheus/examples/console_libraries/prom.lib")
WEB_ASSETS = Path("usr/share/prometheus/web")
# Prometheus's own documented port; a free one when it is taken.
PROMETHEUS_PORT = 9090
CONSOLE = "consoles/quartet.html"
METRICS_ENV = LOCAL / "metrics.env"
WORKDIR = STATE_DIR / "metrics"
TARGETS = "targets.json"


def web_packages() -> list[str]:
    """The Debian packages the server's web UI reads its scripts, styles and fonts from (it depends on them)."""
    depends = ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts"]
    depends += ["--no-breaks", "--no-replaces", "--no-enhances", PACKAGE]
    names = {line.strip() for line in run_captured(depends).stdout.splitlines() if not line.startswith((" ", "<"))}
    return sorted(name for name in names if name.startswith(("libjs-", "fonts-")))


def ensure_prometheus() -> Path:
    """Debian's prometheus and its web assets' packages unpacked into .local/prometheus/root once; that root."""
    UNPACKED.mkdir(parents=True, exist_ok=True)
    with (UNPACKED / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (ROOTFS / "usr" / "bin" / PACKAGE).exists():
            _unpack()
    return ROOTFS


def _unpack() -> None:
    debs, partial = UNPACKED / "debs", UNPACKED / "root.partial"
    for scratch in (debs, partial):
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
    try:
        _download(debs)
    except subprocess.CalledProcessError:
        # No package lists yet, or stale ones naming a version the mirror no longer has: refresh them (as root).
        apt_update([PACKAGE])
        _download(debs)
    for deb in sorted(debs.glob("*.deb")):
        run_captured(["dpkg-deb", "--extract", str(deb), str(partial)])
    # What the image's base leaves out, the unpacked tree does too (see engine.BASES).
    for unread in engine.BASES[engine.PROMETHEUS_BASE_IMAGE].drop:
        shutil.rmtree(partial / unread, ignore_errors=True)
    partial.replace(ROOTFS)
    shutil.rmtree(debs)


def _download(debs: Path) -> None:
    """The server's package and its web assets' into `debs`; apt-get download needs no root with package lists."""
    packages = [PACKAGE, *web_packages()]
    print(f"unpacking Debian's {' '.join(packages)} into {ROOTFS} ...", file=sys.stderr)
    run_captured(["apt-get", "download", *packages], cwd=debs)


def scrape_config(interval_s: float, targets: Path) -> dict[str, object]:
    """The native server's configuration: the alert rules, and every process of `targets`' file, evaluated and
    scraped every `interval_s` seconds."""
    every = f"{interval_s:g}s"
    return {
        "global": {"scrape_interval": every, "evaluation_interval": every},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "quartet", "file_sd_configs": [{"files": [str(targets)]}]}],
    }


def target_groups(processes: Iterable[tuple[str, str, int]]) -> list[dict[str, object]]:
    """File-based discovery's groups for (service, process, port) triples: the job is the service, as Compose's
    and the chart's are, and `process` names the API or worker process."""
    return [
        {"targets": [f"127.0.0.1:{port}"], "labels": {"job": service, "process": process}}
        for service, process, port in processes
    ]


def native_processes() -> list[tuple[str, str, int]]:
    """What `make up` runs natively: each service's main process and its workers, with their ports."""
    from quartet_tools.services import supervisor  # it imports infra, as this module does

    sup = supervisor()
    found = []
    for svc in sup.services:
        for process in [svc, *sup.workers(svc)]:
            if process.port is not None:
                found.append((svc.name, process.name, process.port))
    return found


@dataclass
class NativePrometheus(Server):
    """Debian's Prometheus on 127.0.0.1:`port`, scraping the processes its targets file lists."""

    interval_s: float = 15.0
    # The console templates it serves under /consoles/: the repository's (a test serves consoles of its own).
    consoles: Path = CONSOLES

    @property
    def targets(self) -> Path:
        """The file-based discovery file; Prometheus rereads it when it changes."""
        return self.workdir / TARGETS

    def write_targets(self, processes: Iterable[tuple[str, str, int]]) -> None:
        """Scrape exactly these (service, process, port) triples from now on (written whole, then renamed)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        partial = self.workdir / f"{TARGETS}.partial"
        partial.write_text(json.dumps(target_groups(processes), indent=2))
        partial.replace(self.targets)

    def _prepare(self) -> list[str]:
        root = ensure_prometheus()
        libraries = self.workdir / "console_libraries"
        libraries.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / DEBIAN_LIBRARY, libraries / DEBIAN_LIBRARY.name)
        shutil.copy2(CONSOLE_LIBRARY, libraries / CONSOLE_LIBRARY.name)
        if not self.targets.exists():
            self.write_targets([])
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(scrape_config(self.interval_s, self.targets), sort_keys=False))
        return [
            str(root / "usr" / "bin" / PACKAGE),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.local-assets={root / WEB_ASSETS}/",
            f"--web.console.templates={self.consoles}",
            f"--web.console.libraries={libraries}",
        ]

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the server and wait until it says it is ready (rules loaded, serving queries)."""
        if self.running():
            return
        self._spawn(self._prepare())
        wait_for(self.ready, f"Prometheus on 127.0.0.1:{self.port}", timeout_s, self.logfile, self.gone)

    def ready(self) -> bool:
        """True when /-/ready answers 200."""
        return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200

    @property
    def url(self) -> str:
        """The server's base URL, on the loopback."""
        return f"http://127.0.0.1:{self.port}"


def native() -> NativePrometheus:
    """`make metrics`'s server: on the port its last start used while it runs there or the port is still free
    (after `make metrics-down` another process may have taken it), else 9090 when free, else a free one."""
    saved = WORKDIR / "port"
    server = NativePrometheus("prometheus", PROMETHEUS_PORT, WORKDIR)
    server.port = start_port(int(saved.read_text()) if saved.exists() else None, PROMETHEUS_PORT, ours=server.running())
    return server


def refresh_targets() -> None:
    """Point a running `make metrics` server at what `make up` runs now (worker counts change); else nothing."""
    server = native()
    if server.running():
        server.write_targets(native_processes())


def up() -> dict[str, str]:
    """Start Prometheus (the Compose profile when `make infra-up` chose Compose), write .local/metrics.env."""
    if compose_active():
        from quartet_tools import images  # it imports infra, as this module does

        images.build(images.OBSERVABILITY)
        compose = [*compose_command(), "--profile", "observability"]
        subprocess.run([*compose, "up", "-d", "--wait", *images.OBSERVABILITY], check=True)
        url = f"http://localhost:{PROMETHEUS_PORT}"
    else:
        server = native()
        server.write_targets(native_processes())
        server.start()
        (WORKDIR / "port").write_text(str(server.port))
        url = server.url
    env = {"QUARTET_METRICS_URL": f"{url}/{CONSOLE}", "QUARTET_ALERTS_URL": f"{url}/alerts"}
    METRICS_ENV.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    return env


def down() -> None:
    """Stop what `up` started, and nothing else."""
    if compose_active():
        from quartet_tools import images  # it imports infra, as this module does

        subprocess.run([*compose_command(), "--profile", "observability", "stop", *images.OBSERVABILITY], check=False)
    native().stop()
    METRICS_ENV.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m quartet_tools.metrics up|down|install`."""
    actions = {
        "up": lambda: print("".join(f"{key}={value}\n" for key, value in up().items()), end=""),
        "down": down,
        "install": lambda: print(ensure_prometheus()),
    }
    parser = argparse.ArgumentParser(prog="quartet-metrics", description=__doc__)
    parser.add_argument("action", choices=list(actions))
    return run_action("quartet-metrics", actions[parser.parse_args(argv).action])


if __name__ == "__main__":
    raise SystemExit(main())
