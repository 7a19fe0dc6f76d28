"""The trace viewer: Zipkin behind an OpenTelemetry Collector, natively (`make traces`) or in Compose (`tracing`).

The services send OTLP over HTTP (`quartet_shared.tracing`); the collector (deploy/tracing/collector.yaml) batches
the spans to Zipkin's span API, and Zipkin keeps them in memory and shows them in its web UI. Zipkin's server jar,
web UI included, comes from Maven Central (deploy/tracing/pom.xml, into .local/zipkin like Kafka's jars); the
collector is built once by the collector's own builder from the Go module proxy (deploy/tracing/builder.yaml, into
~/.cache/quartet like promtool). Jaeger is not the viewer: its Go module serves a placeholder instead of its UI,
whose built assets no registry here carries, and it has no Zipkin exporter to stand in as the collector.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from quartet_tools.infra import (
    LOCAL,
    ROOT,
    STATE_DIR,
    InfraError,
    Server,
    go_build,
    go_env,
    pom_property,
    resolve_pom,
    run_action,
    run_captured,
    start_port,
    tool_cache,
    wait_for,
)

TRACING_DIR = ROOT / "deploy" / "tracing"
ZIPKIN_POM = TRACING_DIR / "pom.xml"
ZIPKIN_LIBS = LOCAL / "zipkin"
BUILDER_MANIFEST = TRACING_DIR / "builder.yaml"
COLLECTOR_CONFIG = TRACING_DIR / "collector.yaml"
# The collector builder's release; the manifest pins every component at the same one.
OCB_VERSION = "v0.148.0"
COLLECTOR_BINARY = "quartet-otelcol"
# The ports Zipkin's and the collector's own documentation use (the UI at :9411/zipkin/, OTLP/HTTP at :4318).
ZIPKIN_PORT = 9411
OTLP_PORT = 4318
TRACES_ENV = LOCAL / "traces.env"
# A loaded 2-core machine took over a minute to start Zipkin's JVM.
START_TIMEOUT_S = 180.0


def zipkin_version() -> str:
    """The Zipkin release deploy/tracing/pom.xml pins (the image's tag too)."""
    return pom_property(ZIPKIN_POM, "zipkin.version")


def ensure_zipkin() -> Path:
    """Zipkin's executable jar, resolved from Maven Central once (again when the pom changes)."""
    libs = resolve_pom(ZIPKIN_POM, ZIPKIN_LIBS, "Zipkin's server")
    jars = sorted(libs.glob("zipkin-server-*-exec.jar"))
    if len(jars) != 1:
        raise InfraError(f"expected one zipkin-server exec jar in {libs}, found {[j.name for j in jars]}")
    return jars[0]


def collector_binary() -> Path:
    """Where the collector built from the current manifest lives (a new manifest, a new directory)."""
    digest = hashlib.sha256(BUILDER_MANIFEST.read_bytes()).hexdigest()[:12]
    return tool_cache("otelcol", f"{OCB_VERSION}-{digest}") / COLLECTOR_BINARY


def ensure_collector() -> Path:
    """Build the collector with the pinned builder once (minutes on 2 cores), then reuse it.

    `make test` starts this build in the background as it begins; a test or an image that needs the collector
    meanwhile waits for that build to finish rather than starting a second one.
    """
    binary = collector_binary()
    binary.parent.mkdir(parents=True, exist_ok=True)
    with (binary.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            _build_collector(binary)
    return binary


def _build_collector(binary: Path) -> None:
    builder = tool_cache("ocb", OCB_VERSION) / "builder"
    go_build("go.opentelemetry.io/collector/cmd/builder", OCB_VERSION, builder)
    where = binary.parent
    print(f"building the OpenTelemetry Collector into {where} ...", file=sys.stderr)
    shutil.rmtree(where / "build", ignore_errors=True)
    where.mkdir(parents=True, exist_ok=True)
    # The manifest's output_path is relative: the sources and the binary land under `where`.
    run_captured([str(builder), "--config", str(BUILDER_MANIFEST)], cwd=where, env=go_env())
    (where / "build" / COLLECTOR_BINARY).replace(binary)
    shutil.rmtree(where / "build", ignore_errors=True)


@dataclass
class ZipkinServer(Server):
    """Zipkin with in-memory storage, its API and UI on 127.0.0.1:`port`."""

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the server and wait until it reports itself up."""
        if self.running():
            return
        jar = ensure_zipkin()
        listener = [f"--armeria.ports[0].{key}={value}" for key, value in (("ip", "127.0.0.1"), ("port", self.port))]
        # A bounded store: the oldest spans go first, and the heap stays small.
        command = ["java", "-Xms64m", "-Xmx256m", "-jar", str(jar), *listener, "--armeria.ports[0].protocols[0]=http"]
        self._spawn([*command, "--zipkin.storage.mem.max-spans=100000"])
        wait_for(self.ready, f"Zipkin on 127.0.0.1:{self.port}", timeout_s, self.logfile, self.gone)

    def ready(self) -> bool:
        """True when its health endpoint says UP."""
        return httpx.get(f"{self.url}/health", timeout=2).status_code == 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Collector(Server):
    """The collector, taking OTLP/HTTP on 127.0.0.1:`port` and sending to the Zipkin at `zipkin_url`."""

    zipkin_url: str = f"http://127.0.0.1:{ZIPKIN_PORT}"

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the collector and wait until its receiver takes a request."""
        if self.running():
            return
        env = {
            "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{self.port}",
            "OTELCOL_ZIPKIN_ENDPOINT": f"{self.zipkin_url}/api/v2/spans",
        }
        self._spawn([str(ensure_collector()), "--config", str(COLLECTOR_CONFIG)], env)
        what = f"the OpenTelemetry Collector on 127.0.0.1:{self.port}"
        wait_for(self.ready, what, timeout_s, self.logfile, self.gone)

    def ready(self) -> bool:
        """True when the OTLP receiver accepts an empty export."""
        empty = httpx.post(f"{self.endpoint}/v1/traces", json={}, timeout=2)
        return empty.status_code == 200

    @property
    def endpoint(self) -> str:
        """What OTEL_EXPORTER_OTLP_ENDPOINT names for the services."""
        return f"http://127.0.0.1:{self.port}"


@dataclass
class TraceViewer:
    """Zipkin and the collector in front of it, as one."""

    zipkin: ZipkinServer
    collector: Collector

    @classmethod
    def at(cls, workdir: Path, zipkin_port: int, otlp_port: int) -> TraceViewer:
        """The pair with their state under `workdir`."""
        zipkin = ZipkinServer("zipkin", zipkin_port, workdir / "zipkin")
        collector = Collector("otelcol", otlp_port, workdir / "otelcol", zipkin_url=zipkin.url)
        return cls(zipkin, collector)

    def start(self) -> None:
        """Zipkin first, so that the collector's first batch has somewhere to go."""
        self.zipkin.start()
        self.collector.start()

    def stop(self) -> None:
        """The collector first: it flushes what it holds to Zipkin as it stops."""
        self.collector.stop()
        self.zipkin.stop()

    def env(self) -> dict[str, str]:
        """The variables that point a service at the collector."""
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.collector.endpoint}


def _native() -> TraceViewer:
    """`make traces`'s pair: each on the port its last start used while it runs there or the port is still free,
    else on the standard port when free, else on a free one."""
    workdir = STATE_DIR / "traces"
    saved = json.loads((workdir / "ports.json").read_text()) if (workdir / "ports.json").exists() else {}
    last = TraceViewer.at(workdir, ZIPKIN_PORT, OTLP_PORT)
    zipkin = start_port(saved.get("zipkin"), ZIPKIN_PORT, ours=last.zipkin.running())
    otlp = start_port(saved.get("otlp"), OTLP_PORT, ours=last.collector.running())
    return TraceViewer.at(workdir, zipkin, otlp)


def up() -> dict[str, str]:
    """Start the viewer natively, write .local/traces.env, and return what it holds."""
    viewer = _native()
    viewer.start()
    workdir = STATE_DIR / "traces"
    (workdir / "ports.json").write_text(json.dumps({"zipkin": viewer.zipkin.port, "otlp": viewer.collector.port}))
    env = {**viewer.env(), "QUARTET_TRACES_URL": f"{viewer.zipkin.url}/zipkin/"}
    TRACES_ENV.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    return env


def down() -> None:
    """Stop what `up` started, and nothing else."""
    _native().stop()
    TRACES_ENV.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m quartet_tools.traces up|down|install`."""
    actions = {
        "up": lambda: print("".join(f"{key}={value}\n" for key, value in up().items()), end=""),
        "down": down,
        "install": lambda: print(ensure_zipkin(), ensure_collector(), sep="\n"),
    }
    parser = argparse.ArgumentParser(prog="quartet-traces", description=__doc__)
    parser.add_argument("action", choices=list(actions))
    return run_action("quartet-traces", actions[parser.parse_args(argv).action])


if __name__ == "__main__":
    raise SystemExit(main())
