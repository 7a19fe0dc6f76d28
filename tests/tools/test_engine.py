"""The project's own Docker engine: where it lives, and that stopping it stops only what the project started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from quartet_tools import engine


@pytest.fixture
def engine_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The engine's paths moved under a temporary directory."""
    monkeypatch.setattr(engine, "ENGINE_DIR", tmp_path)
    monkeypatch.setattr(engine, "SOCKET", tmp_path / "docker.sock")
    monkeypatch.setattr(engine, "PIDFILE", tmp_path / "dockerd.pid")
    monkeypatch.setattr(engine, "ENV_FILE", tmp_path / "docker.env")
    return tmp_path


def _spawn(program: Path, *args: str) -> subprocess.Popen[bytes]:
    program.write_text("import time\ntime.sleep(120)\n")
    process = subprocess.Popen([sys.executable, str(program), *args])
    # Until the exec completes, /proc shows the forking test's own command line.
    for _ in range(200):
        if str(program).encode() in Path(f"/proc/{process.pid}/cmdline").read_bytes():
            return process
        time.sleep(0.05)
    raise AssertionError(f"{program} did not start")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait(timeout=10)


def test_the_daemon_owns_its_socket_and_directories_and_never_the_systems() -> None:
    command = engine.dockerd_command()
    joined = " ".join(command)
    assert "/var/run/docker.sock" not in joined and "/var/lib/docker" not in joined
    paths = [command[command.index(flag) + 1] for flag in ("--data-root", "--exec-root", "--pidfile")]
    assert all(Path(path).is_relative_to(engine.ENGINE_DIR) for path in paths)
    assert command[command.index("--host") + 1] == f"unix://{engine.SOCKET}" == engine.client_env()["DOCKER_HOST"]


def test_the_bridges_draw_from_the_networks_the_no_egress_rule_covers() -> None:
    import ipaddress

    covered = ipaddress.ip_network(engine.ENGINE_NETS)
    command = engine.dockerd_command()
    bridge = ipaddress.ip_interface(command[command.index("--bip") + 1]).network
    pool = ipaddress.ip_network(
        command[command.index("--default-address-pool") + 1].split(",")[0].removeprefix("base=")
    )
    assert bridge.subnet_of(covered) and pool.subnet_of(covered)  # type: ignore[arg-type]
    rule = engine.egress_rule()
    assert rule[rule.index("-s") + 1] == engine.ENGINE_NETS and rule[rule.index("!") + 2] == engine.ENGINE_NETS
    assert rule[-2:] == ["-j", "DROP"]


def test_down_leaves_alone_a_process_that_merely_holds_the_pid_in_the_pidfile(
    engine_dir: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    # Another engine (its own socket) whose pid ended up in the pidfile: not the project's to stop.
    other = _spawn(engine_dir / "dockerd", "--host", "unix:///var/run/docker.sock")
    processes.append(other)
    engine.PIDFILE.write_text(str(other.pid))
    engine.ENV_FILE.write_text("export DOCKER_HOST=unix:///nowhere\n")
    engine.down()
    assert other.poll() is None
    assert not engine.ENV_FILE.exists()


def test_down_stops_the_daemon_the_project_started(engine_dir: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    ours = _spawn(engine_dir / "dockerd", "--host", engine.docker_host())
    processes.append(ours)
    engine.PIDFILE.write_text(str(ours.pid))
    engine.down()
    assert ours.wait(timeout=30) != 0
    assert not os.path.exists(f"/proc/{ours.pid}/cmdline") or not engine.running()


def test_the_compose_plugin_is_cached_outside_the_repository() -> None:
    assert not engine.compose_binary().is_relative_to(engine.LOCAL.parent)
    assert engine.compose_binary().parent.name == engine.COMPOSE_VERSION


def test_a_mount_debootstrap_leaves_in_the_root_filesystem_is_detached_before_archiving(tmp_path: Path) -> None:
    proc = tmp_path / "rootfs" / "proc"
    proc.mkdir(parents=True)
    subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
    try:
        engine.unmount_under(tmp_path / "rootfs")
        assert str(proc) not in Path("/proc/mounts").read_text()
        assert list(proc.iterdir()) == []
    finally:
        subprocess.run(["umount", "--lazy", str(proc)], capture_output=True)


def test_the_no_egress_rule_names_its_engine_so_stopping_another_leaves_it(engine_dir: Path) -> None:
    # engine_dir moved SOCKET: the rule of the engine on the real socket is not this one.
    assert str(engine_dir / "docker.sock") in " ".join(engine.egress_rule())


def test_a_base_keeps_only_what_its_containers_read(tmp_path: Path) -> None:
    """Package caches, manuals, translations and documentation go (copyright files stay), and what the base
    names to drop: PostgreSQL's installation-time cluster and its LLVM JIT."""
    kept = ["usr/share/doc/redis-server/copyright", "usr/lib/postgresql/15/bin/postgres", "etc/passwd"]
    gone = [
        "var/cache/apt/archives/redis-server_7.0.15_amd64.deb",
        "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease",
        "usr/share/doc/redis-server/changelog.Debian.gz",
        "usr/share/man/man1/redis-cli.1.gz",
        "usr/share/locale/de/LC_MESSAGES/dpkg.mo",
        "var/lib/postgresql/15/main/PG_VERSION",
        "usr/lib/postgresql/15/lib/llvmjit.so",
        "usr/lib/x86_64-linux-gnu/libLLVM-14.so.1",
    ]
    for name in kept + gone:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    engine.drop_leftovers(tmp_path, engine.BASES[engine.POSTGRES_BASE_IMAGE])
    assert [name for name in kept if (tmp_path / name).is_file()] == kept
    assert [name for name in gone if (tmp_path / name).exists()] == []


def test_the_prometheus_base_keeps_the_console_library_debian_ships_as_documentation(tmp_path: Path) -> None:
    """prom.lib stays (the Quartet console uses it), the rest of the package's documentation goes, and so does
    moment-timezone's unserved data directory."""
    library = "usr/share/doc/prometheus/examples/console_libraries/prom.lib"
    gone = [
        "usr/share/doc/prometheus/examples/consoles/node.html",
        "usr/share/doc/prometheus/changelog.Debian.gz",
        "usr/share/javascript/moment-timezone/data/packed/latest.json",
    ]
    served = "usr/share/javascript/moment-timezone/moment-timezone-with-data.min.js"
    for name in [library, served, *gone]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    engine.drop_leftovers(tmp_path, engine.BASES[engine.PROMETHEUS_BASE_IMAGE])
    assert (tmp_path / library).is_file() and (tmp_path / served).is_file()
    assert [name for name in gone if (tmp_path / name).exists()] == []
    engine.drop_leftovers(tmp_path, engine.BASES[engine.REDIS_BASE_IMAGE])
    assert not (tmp_path / library).exists(), "only the Prometheus base keeps it"


def test_every_base_is_a_debootstrap_variant_with_its_servers_package() -> None:
    """Java for Kafka, Redis and PostgreSQL from Debian's packages, each in a base of its own."""
    packages = {name: base.packages for name, base in engine.BASES.items()}
    assert packages[engine.JAVA_BASE_IMAGE] == ("openjdk-17-jre-headless",)
    assert packages[engine.REDIS_BASE_IMAGE] == ("redis-server",)
    assert packages[engine.POSTGRES_BASE_IMAGE] == ("postgresql-15",)
    assert packages[engine.PROMETHEUS_BASE_IMAGE] == ("prometheus",)
    assert "python3" in packages[engine.BASE_IMAGE]


def test_without_debootstrap_each_base_comes_from_debians_registry_image_with_the_same_packages_and_drops() -> None:
    """Where an engine can pull but the host has no debootstrap, a base is Debian's bookworm image plus the same
    packages, less the same paths, with the same command."""
    for base in engine.BASES.values():
        dockerfile = engine.registry_dockerfile(base)
        lines = dockerfile.splitlines()
        assert lines[0] == "FROM debian:bookworm-slim"
        install = lines[1].split("--no-install-recommends ", 1)[1].split(" && ", 1)[0]
        assert install.split() == list(base.packages)
        removed = lines[1].rsplit("rm -rf ", 1)[1].split()
        assert removed == ["/var/lib/apt/lists/*", *(f"/{path}" for path in (*engine.UNREAD, *base.drop))]
        assert lines[2] == f"CMD {json.dumps(list(base.command))}"
