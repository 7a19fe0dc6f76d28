"""The container images the project builds itself, without a registry: one registry of images, one way to build.

Each image names its Dockerfile, its base (built locally when missing, e.g. the debootstrap bookworm base) and a
staging step that fetches its inputs on the host into `.local/images/` (wheels, jars, ...): nothing is fetched
from inside a container. The build context is the repository root, filtered by `.dockerignore` down to what the
Dockerfiles copy, so `docker compose build` works too once the inputs are staged. Builds use the classic
builder (no BuildKit frontend to pull). `python -m quartet_tools.images build [NAME ...]` is `make images`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from quartet_tools import engine, traces
from quartet_tools.infra import LOCAL, ROOT, InfraError, ensure_kafka_installed, kafka_version, run_action, run_captured
from quartet_tools.toxiproxy import TOXIPROXY_VERSION, ensure_toxiproxy

STAGE_DIR = LOCAL / "images"
# Every wheel ever fetched, by file name; the per-image directories link to it. Not part of any build context.
WHEEL_CACHE = STAGE_DIR / ".cache"
SERVICE_DOCKERFILE = "deploy/docker/Dockerfile"

# The interpreter every service image runs: the base's python3 (Debian bookworm's 3.11.2 on linux x86_64). The
# lock is universal, so its markers are evaluated for exactly this interpreter (async-timeout, for one, is only
# needed before 3.11.3).
TARGET_MARKERS = {
    "python_full_version": "3.11.2",
    "python_version": "3.11",
    "implementation_name": "cpython",
    "implementation_version": "3.11.2",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "sys_platform": "linux",
    "os_name": "posix",
}
# Bookworm's glibc is 2.36: every manylinux tag up to it, spelled out (pip does not expand a custom platform).
_MANYLINUX = [f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)]
_MANYLINUX += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
TARGET_WHEEL_TAGS = [arg for tag in _MANYLINUX for arg in ("--platform", tag)]
TARGET_WHEEL_TAGS += ["--python-version", "3.11.2", "--implementation", "cp", "--abi", "cp311"]


@dataclass(frozen=True)
class Image:
    """One image: its tag, Dockerfile and base, the build arguments, and what is staged on the host first."""

    name: str
    tag: str
    dockerfile: str
    base: str
    stage: Callable[[], None]
    build_args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Pinned:
    """One locked third-party distribution: its version and the hashes the lock accepts."""

    name: str
    version: str
    hashes: tuple[str, ...]

    def line(self) -> str:
        """Its line in a hash-checking requirements file."""
        return " ".join([f"{self.name}=={self.version}", *(f"--hash=sha256:{h}" for h in self.hashes)])


def _uv() -> list[str]:
    """The uv that runs this workspace (`uv run` names itself in $UV), else uv on the PATH, else `python3 -m uv`."""
    found = os.environ.get("UV") or shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def parse_export(text: str, markers: Mapping[str, str] = TARGET_MARKERS) -> list[Pinned]:
    """The pins of a `uv export` requirements file that apply to the interpreter `markers` describes."""
    pins = []
    for entry in text.replace("\\\n", " ").splitlines():
        entry = entry.strip()
        if not entry or entry.startswith(("#", "-e", ".")):
            continue
        spec, *hashes = entry.split(" --hash=sha256:")
        requirement = Requirement(spec)
        if requirement.marker is not None and not requirement.marker.evaluate(dict(markers)):
            continue
        (pin,) = requirement.specifier
        pins.append(Pinned(canonicalize_name(requirement.name), pin.version, tuple(h.split()[0] for h in hashes)))
    return pins


@cache
def locked(package: str | None = None, group: str | None = None) -> tuple[Pinned, ...]:
    """The third-party pins of a workspace package (without dev groups), or of one dependency group only."""
    command = [*_uv(), "export", "--frozen", "--no-header", "--format", "requirements-txt", "--no-emit-workspace"]
    command += ["--package", package, "--no-dev"] if package else ["--only-group", str(group), "--no-emit-project"]
    return tuple(parse_export(run_captured(command, cwd=ROOT).stdout))


def _sha256(path: Path) -> str:
    stat = path.stat()
    return _sha256_of(path, stat.st_size, stat.st_mtime_ns)


@cache
def _sha256_of(path: Path, _size: int, _mtime_ns: int) -> str:
    """A file's digest, computed once per process for each (path, size, mtime)."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cached(pins: Iterable[Pinned]) -> dict[Pinned, Path]:
    """The cached wheel of each pin that has one whose hash the lock accepts."""
    by_release: dict[tuple[str, Version], list[Path]] = {}
    for wheel in WHEEL_CACHE.glob("*.whl"):
        name, version, _build, _tags = parse_wheel_filename(wheel.name)
        by_release.setdefault((name, version), []).append(wheel)
    found = {}
    for pin in pins:
        for wheel in by_release.get((pin.name, Version(pin.version)), []):
            if _sha256(wheel) in pin.hashes:
                found[pin] = wheel
    return found


def fetch_wheels(pins: list[Pinned]) -> dict[Pinned, Path]:
    """Each pin's wheel for the target interpreter: from the cache, else from the index (binary only, hashed)."""
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    cached = _cached(pins)
    missing = [pin for pin in pins if pin not in cached]
    if missing:
        print(f"fetching {len(missing)} wheels for Python 3.11.2 linux x86_64 ...", file=sys.stderr)
        with tempfile.NamedTemporaryFile("w", suffix=".txt", dir=STAGE_DIR) as requirements:
            requirements.write("".join(f"{pin.line()}\n" for pin in missing))
            requirements.flush()
            download = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet"]
            download += ["--only-binary", ":all:", "--no-deps", *TARGET_WHEEL_TAGS]
            run_captured([*download, "--dest", str(WHEEL_CACHE), "--requirement", requirements.name])
    found = _cached(pins)
    if len(found) != len(pins):
        raise InfraError(f"no wheel for {sorted(p.name for p in pins if p not in found)}")
    return found


def fresh_context(staged: Path) -> Path:
    """`staged` emptied (what an earlier build left would otherwise go into the image too) and made anew."""
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    return staged


def stage_wheels(directory: Path, pins: list[Pinned]) -> None:
    """`directory` holds exactly these pins' wheels (linked from the cache) and a hashed requirements.txt."""
    wheels = fetch_wheels(pins)
    fresh_context(directory)
    for wheel in wheels.values():
        os.link(wheel, directory / wheel.name)
    lines = sorted(pin.line() for pin in pins)
    (directory / "requirements.txt").write_text("".join(f"{line}\n" for line in lines))


def build_workspace_wheels(directory: Path, packages: Iterable[str]) -> None:
    """Real (not editable) wheels of workspace packages, built from the working tree into `directory`."""
    for package in packages:
        run_captured(
            [*_uv(), "build", "--quiet", "--wheel", "--package", package, "--out-dir", str(directory)], cwd=ROOT
        )


def stage_service(program: str) -> None:
    """What a service image installs: pip's wheel, the kernel's wheels, then the service's own on top."""
    kernel = locked("quartet-shared")
    stage_wheels(STAGE_DIR / "pip", [pin for pin in locked(group="dev") if pin.name == "pip"])
    stage_wheels(STAGE_DIR / "kernel", list(kernel))
    # The kernel's dependencies get a layer of their own, shared by every service image: not repeated here.
    shared = {pin.name for pin in kernel}
    own = STAGE_DIR / program
    stage_wheels(own / "deps", [pin for pin in locked(f"quartet-{program}") if pin.name not in shared])
    shutil.rmtree(own / "workspace", ignore_errors=True)
    build_workspace_wheels(own / "workspace", ["quartet-contracts", "quartet-shared", f"quartet-{program}"])


def _service(program: str, port: int) -> Image:
    return Image(
        name=program,
        tag=f"quartet/{program}:local",
        dockerfile=SERVICE_DOCKERFILE,
        base=engine.BASE_IMAGE,
        stage=lambda: stage_service(program),
        build_args={"SERVICE": program, "PORT": str(port)},
    )


def stage_kafka() -> None:
    """The broker's jars, resolved on the host from deploy/kafka/pom.xml, linked into the Kafka image's context."""
    libs = ensure_kafka_installed()
    staged = fresh_context(STAGE_DIR / "kafka" / "libs")
    for jar in libs.glob("*.jar"):
        os.link(jar, staged / jar.name)


def stage_zipkin() -> None:
    """Zipkin's executable jar, resolved on the host from deploy/tracing/pom.xml, linked into its image's context."""
    staged = fresh_context(STAGE_DIR / "zipkin")
    os.link(traces.ensure_zipkin(), staged / "zipkin.jar")


def stage_collector() -> None:
    """The collector built on the host (its cache is outside the repository: copied) and its pipeline."""
    staged = fresh_context(STAGE_DIR / "otelcol")
    shutil.copy2(traces.ensure_collector(), staged / traces.COLLECTOR_BINARY)
    shutil.copy2(traces.COLLECTOR_CONFIG, staged / "collector.yaml")


def stage_toxiproxy() -> None:
    """The pinned Toxiproxy server and CLI built on the host (their cache is outside the repository: copied)."""
    server = ensure_toxiproxy()
    staged = fresh_context(STAGE_DIR / "toxiproxy")
    for binary in (server, server.with_name("toxiproxy-cli")):
        shutil.copy2(binary, staged / binary.name)


def _base_builder(name: str) -> Callable[[], object]:
    return lambda: engine.build_base_image(name, docker_env())


def _server(name: str, tag: str, base: str, stage: Callable[[], None] = lambda: None) -> Image:
    return Image(name=name, tag=tag, dockerfile=f"deploy/docker/{name}/Dockerfile", base=base, stage=stage)


# Base images, built when missing: the tag and what builds it (each a debootstrap variant, engine.BASES).
BASES: dict[str, Callable[[], object]] = {name: _base_builder(name) for name in engine.BASES}
# The servers' images, by Compose service name (docker-compose.yml runs them under these names).
SERVERS = ["kafka", "redis", "postgres"]
# The trace viewer's, for the Compose profile `tracing` only.
TRACING = ["zipkin", "otelcol"]
# Prometheus, for the Compose profile `observability` only.
OBSERVABILITY = ["prometheus"]
# The fault proxy, for the Compose profile `cluster` only.
CLUSTER = ["toxiproxy"]
IMAGES: dict[str, Image] = {
    image.name: image
    for image in (
        _service("training-worker", 8001),
        _service("path-planner", 8002),
        _service("rental-manager", 8003),
        _service("simulator", 8004),
        # The servers, from the same pinned jars and Debian packages as the native ones (README, "Containers").
        _server("kafka", f"quartet/kafka:{kafka_version()}", engine.JAVA_BASE_IMAGE, stage_kafka),
        _server("redis", "quartet/redis:bookworm", engine.REDIS_BASE_IMAGE),
        _server("postgres", "quartet/postgres:bookworm", engine.POSTGRES_BASE_IMAGE),
        # The trace viewer of the Compose profile `tracing` (README, "Traces").
        _server("zipkin", f"quartet/zipkin:{traces.zipkin_version()}", engine.JAVA_BASE_IMAGE, stage_zipkin),
        _server("otelcol", f"quartet/otelcol:{traces.OCB_VERSION[1:]}", engine.BASE_IMAGE, stage_collector),
        # Debian's Prometheus with Quartet's console and rules, for the profile `observability` (README).
        _server("prometheus", "quartet/prometheus:bookworm", engine.PROMETHEUS_BASE_IMAGE),
        # The fault proxy in front of each node of the Compose profile `cluster` (README, "Network faults").
        _server("toxiproxy", f"quartet/toxiproxy:{TOXIPROXY_VERSION[1:]}", engine.BASE_IMAGE, stage_toxiproxy),
    )
}


def docker_env() -> dict[str, str]:
    """The environment for docker commands: DOCKER_HOST if set, else the project's engine if it answers."""
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    if "DOCKER_HOST" not in os.environ and engine.answers():
        env.update(engine.client_env())
    return env


def image_exists(tag: str) -> bool:
    """True if the engine has an image of this tag."""
    inspect = ["docker", "image", "inspect", tag]
    return subprocess.run(inspect, capture_output=True, env=docker_env()).returncode == 0


def build_one(image: Image, tag: str | None = None) -> float:
    """Stage the image's inputs, build its base if missing, then the image; the build's seconds."""
    if not image_exists(image.base):
        BASES[image.base]()
    image.stage()
    target = f"{image.tag.rsplit(':', 1)[0]}:{tag}" if tag else image.tag
    command = ["docker", "build", "--file", image.dockerfile, "--tag", target]
    for key, value in {"BASE_IMAGE": image.base, **image.build_args}.items():
        command += ["--build-arg", f"{key}={value}"]
    print(f"building {target} ...", file=sys.stderr)
    started = time.monotonic()
    # The build's own progress goes to stderr as it happens: a failing step shows its output.
    subprocess.run([*command, "."], cwd=ROOT, env=docker_env(), check=True, stdout=sys.stderr)
    return time.monotonic() - started


def build(names: Iterable[str], tag: str | None = None) -> dict[str, float]:
    """Build the named images, in order; each one's build seconds."""
    if unknown := sorted(set(names) - set(IMAGES)):
        raise InfraError(f"no image named {unknown}; known: {sorted(IMAGES)}")
    return {name: build_one(IMAGES[name], tag) for name in names}


def build_all(tag: str | None = None) -> dict[str, float]:
    """Build every image of the registry."""
    return build(list(IMAGES), tag)


def main(argv: list[str] | None = None) -> int:
    """`python -m quartet_tools.images build [NAME ...] [--tag TAG]`, `stage [NAME ...]`, `list`."""
    parser = argparse.ArgumentParser(prog="quartet-images", description=__doc__)
    parser.add_argument("action", choices=["build", "stage", "list"])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"images (default: all): {', '.join(IMAGES)}")
    parser.add_argument("--tag", help="tag the images TAG instead of their own tag (experimental builds)")
    args = parser.parse_args(argv)
    names = args.names or list(IMAGES)
    if unknown := sorted(set(names) - set(IMAGES)):
        parser.error(f"no image named {unknown}")

    def act() -> None:
        if args.action == "list":
            print("\n".join(f"{image.name}\t{image.tag}\t{image.dockerfile}" for image in IMAGES.values()))
        elif args.action == "stage":
            for name in names:
                IMAGES[name].stage()
        else:
            for name, seconds in build(names, args.tag).items():
                print(f"{name}\t{seconds:.1f} s")

    return run_action("quartet-images", act)


if __name__ == "__main__":
    raise SystemExit(main())
