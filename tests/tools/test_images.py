"""The image registry and the host-side staging of wheels for the images' interpreter (no Docker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from quartet_tools import engine, images, traces
from quartet_tools.infra import ROOT as REPO
from quartet_tools.infra import kafka_version
from quartet_tools.toxiproxy import TOXIPROXY_VERSION

EXPORT = """\
async-timeout==5.0.1 ; python_full_version < '3.11.3' \\
    --hash=sha256:aaa \\
    --hash=sha256:bbb
    # via redis
colorama==0.4.6 ; sys_platform == 'win32' \\
    --hash=sha256:ccc
PyYAML==6.0.4 \\
    --hash=sha256:ddd
"""


def test_export_is_evaluated_for_the_images_interpreter_not_the_hosts() -> None:
    """Python 3.11.2 on Linux: async-timeout (needed before 3.11.3) stays, a Windows-only pin goes."""
    pins = images.parse_export(EXPORT)
    assert pins == [
        images.Pinned("async-timeout", "5.0.1", ("aaa", "bbb")),
        images.Pinned("pyyaml", "6.0.4", ("ddd",)),
    ]
    assert pins[0].line() == "async-timeout==5.0.1 --hash=sha256:aaa --hash=sha256:bbb"
    newer = {**images.TARGET_MARKERS, "python_full_version": "3.11.9"}
    assert [pin.name for pin in images.parse_export(EXPORT, newer)] == ["pyyaml"]


def test_the_lock_gives_every_service_image_its_kernel_and_its_own_pins() -> None:
    """The real lock: the kernel's pins include async-timeout for 3.11.2; no pin of the dev group in a service's."""
    kernel = {pin.name for pin in images.locked("quartet-shared")}
    assert {"kafka-python", "fastapi", "async-timeout"} <= kernel
    dev = {pin.name for pin in images.locked(group="dev")}
    for program in ("training-worker", "path-planner", "rental-manager", "simulator"):
        own = {pin.name for pin in images.locked(f"quartet-{program}")}
        assert kernel <= own
        assert not own & {"pytest", "ruff", "mypy", "pip", "uv"}
    assert {"pytest", "pip"} <= dev


def test_registry_names_the_four_service_images_on_the_local_base() -> None:
    """Each service image: its tag, the one service Dockerfile, the debootstrap base, its service and port."""
    assert list(images.IMAGES)[:4] == ["training-worker", "path-planner", "rental-manager", "simulator"]
    planner = images.IMAGES["path-planner"]
    assert planner.tag == "quartet/path-planner:local"
    assert planner.base in images.BASES
    assert planner.build_args == {"SERVICE": "path-planner", "PORT": "8002"}


def test_unknown_image_is_refused() -> None:
    """A name the registry does not know fails before anything is staged or built."""
    with pytest.raises(images.InfraError, match="no image named"):
        images.build(["kafak"])
    with pytest.raises(SystemExit):
        images.main(["build", "kafak"])


def test_registry_builds_the_servers_from_their_own_debootstrap_bases() -> None:
    """Kafka (tagged with the pom's version) on the Java base, Redis and PostgreSQL on bases with their package;
    the trace viewer's Zipkin on the Java base too and its collector (a static binary) on the plain one; Prometheus
    on the base with Debian's package; the Compose cluster's Toxiproxy (a static binary) on the plain one."""
    assert {name: (image.tag, image.base) for name, image in images.IMAGES.items() if not image.build_args} == {
        "kafka": (f"quartet/kafka:{kafka_version()}", engine.JAVA_BASE_IMAGE),
        "redis": ("quartet/redis:bookworm", engine.REDIS_BASE_IMAGE),
        "postgres": ("quartet/postgres:bookworm", engine.POSTGRES_BASE_IMAGE),
        "zipkin": (f"quartet/zipkin:{traces.zipkin_version()}", engine.JAVA_BASE_IMAGE),
        "otelcol": ("quartet/otelcol:0.148.0", engine.BASE_IMAGE),
        "prometheus": ("quartet/prometheus:bookworm", engine.PROMETHEUS_BASE_IMAGE),
        "toxiproxy": (f"quartet/toxiproxy:{TOXIPROXY_VERSION[1:]}", engine.BASE_IMAGE),
    }
    for image in images.IMAGES.values():
        assert image.base in images.BASES
        assert (REPO / image.dockerfile).is_file()


def test_the_toxiproxy_image_gets_the_pinned_server_and_cli_and_only_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staging copies the server and CLI the host built (their cache is outside the context), replacing the rest."""
    built = tmp_path / "cache"
    built.mkdir()
    for name in ("toxiproxy-server", "toxiproxy-cli", "build"):
        (built / name).write_text(name)
    monkeypatch.setattr(images, "STAGE_DIR", tmp_path / "images")
    monkeypatch.setattr(images, "ensure_toxiproxy", lambda: built / "toxiproxy-server")
    stale = tmp_path / "images" / "toxiproxy" / "toxiproxy-server-old"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    images.stage_toxiproxy()
    staged = {p.name: p.read_text() for p in stale.parent.iterdir()}
    assert staged == {"toxiproxy-server": "toxiproxy-server", "toxiproxy-cli": "toxiproxy-cli"}


def test_the_kafka_image_gets_exactly_the_jars_the_native_broker_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staging links every resolved jar (and only jars) into the Kafka image's context, replacing older ones."""
    libs = tmp_path / "libs"
    libs.mkdir()
    for name in ("kafka_2.13-4.4.0.jar", "kafka-clients-4.4.0.jar", ".pom-sha256"):
        (libs / name).write_text(name)
    monkeypatch.setattr(images, "STAGE_DIR", tmp_path / "images")
    monkeypatch.setattr(images, "ensure_kafka_installed", lambda: libs)
    stale = tmp_path / "images" / "kafka" / "libs" / "kafka_2.13-4.3.0.jar"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    images.stage_kafka()
    staged = sorted(p.name for p in stale.parent.iterdir())
    assert staged == ["kafka-clients-4.4.0.jar", "kafka_2.13-4.4.0.jar"]
    assert (stale.parent / "kafka_2.13-4.4.0.jar").stat().st_ino == (libs / "kafka_2.13-4.4.0.jar").stat().st_ino
