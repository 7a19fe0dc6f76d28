"""A Docker engine the project starts itself: dockerd on a socket and data directory under `.local/docker/`.

Nothing else on the machine changes behaviour: the daemon never listens on /var/run/docker.sock, its bridges use
address pools of their own, and a DOCKER-USER rule drops whatever leaves those bridges for an address outside
them, so containers have no route off the machine. `python -m quartet_tools.engine up|down|status|base-image`
is what `make engine-up`, `make engine-down`, `make engine-status` and `make base-image` call.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from quartet_tools.infra import LOCAL, InfraError, ensure_command, go_env, print_env, run_action, run_captured, wait_for

ENGINE_DIR = LOCAL / "docker"
SOCKET = ENGINE_DIR / "docker.sock"
PIDFILE = ENGINE_DIR / "dockerd.pid"
LOG = ENGINE_DIR / "dockerd.log"
# Client settings for the project's commands: `source .local/docker.env` points docker (and testcontainers) here.
ENV_FILE = LOCAL / "docker.env"
# A client configuration of the project's own, so the Compose plugin needs no change under ~/.docker.
CLIENT_CONFIG = ENGINE_DIR / "config"

COMPOSE_VERSION = "v5.6.0"
COMPOSE_MODULE = "github.com/docker/compose/v5"
# The default bridge and every network Compose creates draw from these, so one rule covers them all.
BRIDGE_CIDR = "10.213.0.1/24"
POOL_BASE = "10.214.0.0/16"
ENGINE_NETS = "10.212.0.0/14"
EGRESS_COMMENT = "quartet-engine-no-egress"

BASE_IMAGE = "quartet/base:bookworm"
BASE_PACKAGES = ["python3", "python3-venv", "ca-certificates"]
JAVA_BASE_IMAGE = "quartet/base-java:bookworm"
REDIS_BASE_IMAGE = "quartet/base-redis:bookworm"
POSTGRES_BASE_IMAGE = "quartet/base-postgres:bookworm"
PROMETHEUS_BASE_IMAGE = "quartet/base-prometheus:bookworm"


@dataclass(frozen=True)
class Base:
    """A debootstrap variant: bookworm's minbase plus these Debian packages (and what they depend on)."""

    packages: tuple[str, ...]
    command: tuple[str, ...] = ("bash",)
    # Paths (relative to the root) a package's installation leaves that the image must not carry.
    drop: tuple[str, ...] = ()
    # Files under usr/share/doc (relative to the root) that the image reads, kept when the rest of it goes.
    keep: tuple[str, ...] = ()


# Every base the project's images start from. A server's own Debian package goes into its base rather than into a
# Dockerfile: apt cannot run inside a container (no registry, no mirror), and debootstrap resolves its dependencies.
BASES: dict[str, Base] = {
    BASE_IMAGE: Base(tuple(BASE_PACKAGES), command=("python3",)),
    JAVA_BASE_IMAGE: Base(("openjdk-17-jre-headless",)),
    REDIS_BASE_IMAGE: Base(("redis-server",)),
    # postgresql-common makes a "main" cluster at installation; the image's entrypoint makes its own in a volume.
    # LLVM (131 MB, a third of the image) only serves JIT compilation, which Quartet's short queries never reach;
    # without its provider library PostgreSQL runs them interpreted, as it does with jit=off.
    POSTGRES_BASE_IMAGE: Base(
        ("postgresql-15",),
        drop=(
            "etc/postgresql/15",
            "var/lib/postgresql/15",
            "usr/lib/postgresql/15/lib/llvmjit.so",
            "usr/lib/postgresql/15/lib/llvmjit_types.bc",
            "usr/lib/postgresql/15/lib/bitcode",
            "usr/lib/x86_64-linux-gnu/libLLVM-14.so.1",
        ),
    ),
    # The server, its web UI's scripts and styles (Debian's libjs-* packages, which it depends on) and the console
    # library that Debian ships as an example.
    # moment-timezone's data directory (212 MB of time zone sources) is not served: the graph page reads the
    # bundled moment-timezone-with-data.min.js.
    PROMETHEUS_BASE_IMAGE: Base(
        ("prometheus",),
        drop=("usr/share/javascript/moment-timezone/data",),
        keep=("usr/share/doc/prometheus/examples/console_libraries/prom.lib",),
    ),
}
# What no container reads, as in Debian's slim images: manual pages, translations, documentation (but for each
# package's copyright file).
UNREAD = ("usr/share/man", "usr/share/info", "usr/share/locale")


def docker_host() -> str:
    """The DOCKER_HOST value for the project's own engine."""
    return f"unix://{SOCKET}"


def client_env() -> dict[str, str]:
    """The environment a docker client needs to reach the project's engine with its Compose plugin."""
    return {"DOCKER_HOST": docker_host(), "DOCKER_CONFIG": str(CLIENT_CONFIG)}


def dockerd_command() -> list[str]:
    """dockerd's command line: every path under .local/docker, the bridges on the project's address pools."""
    return [
        "dockerd",
        "--data-root",
        str(ENGINE_DIR / "root"),
        "--exec-root",
        str(ENGINE_DIR / "exec"),
        "--host",
        docker_host(),
        "--pidfile",
        str(PIDFILE),
        "--bip",
        BRIDGE_CIDR,
        "--default-address-pool",
        f"base={POOL_BASE},size=24",
    ]


def compose_binary() -> Path:
    """Where the pinned Compose CLI lives: a cache outside the repository, one directory per version."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "quartet" / "compose" / COMPOSE_VERSION / "docker-compose"


def ensure_compose() -> Path:
    """Build the pinned Compose CLI from the Go module proxy once, then reuse it as the project's CLI plugin."""
    binary = compose_binary()
    if not binary.exists():
        _build_compose(binary)
    plugin = CLIENT_CONFIG / "cli-plugins" / "docker-compose"
    plugin.parent.mkdir(parents=True, exist_ok=True)
    if not plugin.exists():
        plugin.symlink_to(binary)
    return binary


def _build_compose(binary: Path) -> None:
    # `go install mod@version` refuses a go.mod with exclude directives: build the module as the main module.
    if shutil.which("go") is None:
        ensure_command("go", "golang-go")
    print(
        f"building docker compose {COMPOSE_VERSION} from the Go module proxy into {binary.parent} ...", file=sys.stderr
    )
    env = go_env()
    module = json.loads(
        run_captured(["go", "mod", "download", "-json", f"{COMPOSE_MODULE}@{COMPOSE_VERSION}"], env=env).stdout
    )
    binary.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "compose"
        shutil.copytree(module["Dir"], source)
        for path in [source, *source.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        version = f"-X {COMPOSE_MODULE}/internal.Version={COMPOSE_VERSION}"
        run_captured(
            ["go", "build", "-trimpath", "-ldflags", f"-s -w {version}", "-o", str(binary), "./cmd"],
            env=env,
            cwd=source,
        )


def ensure_engine_installed() -> None:
    """Debian's docker.io (dockerd, containerd, runc) and debootstrap, installed when missing."""
    ensure_command("dockerd", "docker.io")
    ensure_command("debootstrap")
    ensure_command("iptables")


def _pid() -> int | None:
    """The pid of the dockerd this project started, if it still runs (a pid reused by another program is not it)."""
    try:
        pid = int(PIDFILE.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if not any(Path(arg.decode()).name == "dockerd" for arg in cmdline) or docker_host().encode() not in cmdline:
        return None
    return pid


def running() -> bool:
    """True if the dockerd this project starts runs (answering or not)."""
    return _pid() is not None


def answers() -> bool:
    """True if the project's engine answers on its socket."""
    if not SOCKET.exists():
        return False
    env = {**os.environ, **client_env()}
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10, env=env).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def egress_rule() -> list[str]:
    """The DOCKER-USER rule (without its chain) dropping what leaves the bridges of the engine on SOCKET."""
    # The comment names the engine's socket: only that engine's engine-down removes it.
    comment = f"{EGRESS_COMMENT} {SOCKET}"
    return ["-s", ENGINE_NETS, "!", "-d", ENGINE_NETS, "-m", "comment", "--comment", comment, "-j", "DROP"]


def _iptables(action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", action, "DOCKER-USER", *egress_rule()], capture_output=True, text=True)


def block_egress() -> None:
    """Drop forwarded traffic from the project's bridges to any address outside them (once, first in DOCKER-USER)."""
    if _iptables("-C").returncode != 0:
        result = _iptables("-I")
        if result.returncode != 0:
            raise InfraError(f"could not add the no-egress rule to DOCKER-USER: {result.stderr.strip()}")


def egress_drops() -> int:
    """Packets the no-egress rule has dropped so far (its iptables counter)."""
    listing = run_captured(["iptables", "-L", "DOCKER-USER", "-v", "-x", "-n"]).stdout
    for line in listing.splitlines():
        if f"{EGRESS_COMMENT} {SOCKET}" in line:
            return int(line.split()[0])
    raise InfraError("the no-egress rule is not in DOCKER-USER")


def up(compose: bool = True) -> dict[str, str]:
    """Install what is missing, start dockerd (unless it already runs), wait until it answers; harmless twice.
    `compose=False` leaves the Compose CLI to the caller (`make test` builds it while the native suite runs)."""
    ensure_engine_installed()
    if compose:
        ensure_compose()
    if _pid() is None:
        ENGINE_DIR.mkdir(parents=True, exist_ok=True)
        with LOG.open("ab") as log:
            subprocess.Popen(
                dockerd_command(), stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
            )
    wait_for(answers, "dockerd", 60, LOG)
    block_egress()
    env = client_env()
    ENV_FILE.write_text("".join(f"export {key}={value}\n" for key, value in env.items()))
    return env


def down() -> None:
    """Stop the dockerd this project started (its containers with it), and nothing else; harmless when none runs."""
    pid = _pid()
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while _pid() is not None and time.monotonic() < deadline:
            time.sleep(0.5)
        if _pid() is not None:
            os.kill(pid, signal.SIGKILL)
    if shutil.which("iptables") is not None:
        while _iptables("-C").returncode == 0:
            _iptables("-D")
    ENV_FILE.unlink(missing_ok=True)


def status() -> dict[str, object]:
    """Whether the project's engine runs and answers, and where."""
    return {"pid": _pid(), "answers": answers(), "DOCKER_HOST": docker_host(), "env_file": str(ENV_FILE)}


def debian_mirror() -> str:
    """The Debian mirror the machine's apt sources name (the one debootstrap fetches the base from)."""
    sources = [*Path("/etc/apt/sources.list.d").glob("*.sources"), Path("/etc/apt/sources.list")]
    for path in sources:
        for line in path.read_text().splitlines() if path.exists() else []:
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and "security" not in line:
                return next(word for word in words[1:] if "://" in word)
    raise InfraError("no Debian mirror found in the apt sources")


def unmount_under(root: Path) -> None:
    """Detach every mount below `root`, deepest first."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for target in sorted((m for m in mounts if Path(m).is_relative_to(root)), key=len, reverse=True):
        run_captured(["umount", "--lazy", target])


def debootstrap_cache() -> Path:
    """Where debootstrap keeps the .debs it fetched: outside the repository, shared by every base."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "quartet" / "debootstrap"


def build_base_image(name: str = BASE_IMAGE, env: Mapping[str, str] | None = None) -> str:
    """The bookworm base `name` (one of BASES) from debootstrap, imported once into the engine `env` names
    (by default the project's)."""
    env = env or {**os.environ, **client_env()}
    if subprocess.run(["docker", "image", "inspect", name], capture_output=True, env=env).returncode == 0:
        return name
    base = BASES[name]
    if shutil.which("debootstrap") is None:
        # No debootstrap (Docker Desktop, a non-Debian host): the engine can pull Debian's own image instead.
        run_captured(["docker", "build", "--tag", name, "-"], input=registry_dockerfile(base), env=env)
        return name
    with tempfile.TemporaryDirectory(dir=LOCAL) as scratch:
        rootfs = Path(scratch) / "rootfs"
        include = ",".join(base.packages)
        debootstrap_cache().mkdir(parents=True, exist_ok=True)
        print(f"debootstrap bookworm ({include}) from {debian_mirror()} ...", file=sys.stderr)
        run_captured(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={include}",
                f"--cache-dir={debootstrap_cache()}",
                "bookworm",
                str(rootfs),
                debian_mirror(),
            ]
        )
        # debootstrap can leave the host's /proc mounted in the root filesystem: never archive the machine's.
        unmount_under(rootfs)
        drop_leftovers(rootfs, base)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--one-file-system", "-c", "."], stdout=subprocess.PIPE)
        cmd = f"CMD {json.dumps(list(base.command))}"
        run_captured(["docker", "import", "--change", cmd, "-", name], stdin=tar.stdout, env=env)
        if tar.wait() != 0:
            raise InfraError(f"tar of {rootfs} failed")
    return name


def registry_dockerfile(base: Base) -> str:
    """The same base built from Debian's registry image, for an engine that can pull and a host without debootstrap."""
    drop = " ".join(f"/{path}" for path in (*UNREAD, *base.drop))
    # Debian's slim image leaves out the manual directories that a JRE's installation writes into.
    return (
        "FROM debian:bookworm-slim\n"
        "RUN mkdir -p /usr/share/man/man1 && apt-get update"
        " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
        f"{' '.join(base.packages)} && rm -rf /var/lib/apt/lists/* {drop}\n"
        f"CMD {json.dumps(list(base.command))}\n"
    )


def drop_leftovers(rootfs: Path, base: Base) -> None:
    """Remove the package lists, the .deb cache, what no container reads and what `base` says to drop."""
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (rootfs / leftover).glob("*"):
            if path.is_file():
                path.unlink()
    for path in (rootfs / "usr/share/doc").rglob("*"):
        kept = path.name == "copyright" or str(path.relative_to(rootfs)) in base.keep
        if path.is_file() and not path.is_symlink() and not kept:
            path.unlink()
    for name in (*UNREAD, *base.drop):
        path = rootfs / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m quartet_tools.engine up|down|status|base-image`."""
    actions: dict[str, Callable[[], object]] = {
        "up": lambda: print_env(up()),
        "down": down,
        "status": lambda: print(json.dumps(status(), indent=2)),
        "base-image": lambda: print(build_base_image()),
        "bases": lambda: print("\n".join(build_base_image(name) for name in BASES)),
    }
    parser = argparse.ArgumentParser(prog="quartet-engine", description=__doc__)
    parser.add_argument("action", choices=list(actions))
    return run_action("quartet-engine", actions[parser.parse_args(argv).action])


if __name__ == "__main__":
    raise SystemExit(main())
