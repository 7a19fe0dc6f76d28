"""deploy/docker/Dockerfile: its structure, and the four service images built from it in a Docker engine.

The images are built with `quartet_tools.images` (docker's layer cache makes that cheap when nothing changed),
then looked at from inside: `pip list` (pip's staged wheel mounted read-only, since the image has no pip) must
show its service, the kernel and exactly the lock's pins for them on Python 3.11.2; nothing of the dev or bench
groups, no other service's distribution or its exclusive dependencies (all derived from uv.lock); no compiler,
uv or pip on its filesystem; it runs as uid 10001 and its console script starts; and its size stays within
1.5 x (its installed environment + the base). Set QUARTET_IMAGE_TAG to build and check `quartet/<service>:TAG`
instead of the registry's own tags.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from functools import cache
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser
from packaging.utils import canonicalize_name
from quartet_tools import images

from tests.deploy.conftest import BY_PROGRAM, REPO, Roles, require_roles

DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
# Installers and build tools: never in an image, whatever the lock says.
INSTALLERS = {"pip", "uv", "setuptools", "wheel", "hatchling"}
EXECUTABLES = ["gcc", "cc", "c++", "g++", "clang", "ld", "make", "uv", "uvx", "pip", "pip3", "pip3.11"]
SIZE_FACTOR = 1.5


def instructions() -> list[dict[str, Any]]:
    """The Dockerfile's instructions, in order."""
    return [i for i in DockerfileParser(path=str(DOCKERFILE)).structure if i["instruction"] != "COMMENT"]


def stages() -> dict[str, list[dict[str, Any]]]:
    """Instructions per build stage, by stage name."""
    out: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] = []
    for ins in instructions():
        if ins["instruction"] == "FROM":
            current = []
            out[ins["value"].split(" AS ")[-1].strip()] = current
        current.append(ins)
    return out


def values(stage: str, instruction: str) -> list[str]:
    """The values of one kind of instruction in a stage."""
    return [i["value"] for i in stages()[stage] if i["instruction"] == instruction]


def test_dockerfile_needs_no_buildkit_and_no_registry() -> None:
    """No `# syntax=` line (a frontend image), no RUN --mount, every stage from the local base or an earlier stage."""
    text = DOCKERFILE.read_text()
    assert not any(line.lower().startswith("# syntax") for line in text.splitlines())
    assert all("--mount" not in i["value"] for i in instructions() if i["instruction"] == "RUN")
    (default,) = [i["value"] for i in instructions()[:1] if i["instruction"] == "ARG"]
    assert default == f"BASE_IMAGE={images.engine.BASE_IMAGE}"
    assert {images.IMAGES[program].base for program in BY_PROGRAM} == {images.engine.BASE_IMAGE}
    seen: list[str] = []
    for name, body in stages().items():
        parent = body[0]["value"].split()[0]
        assert parent == "${BASE_IMAGE}" or parent in seen, f"stage {name} is built FROM {parent}"
        seen.append(name)
    assert seen == ["kernel", "service", "runtime"]


def test_runtime_stage_runs_unprivileged_with_a_healthcheck() -> None:
    """The final stage: uid 10001, /healthz on the service's port, the role as the command, only venv files copied."""
    assert values("runtime", "USER") == ["10001:10001"]
    (health,) = values("runtime", "HEALTHCHECK")
    assert "/healthz" in health and "HEALTHCHECK_PORT" in health
    assert any("HEALTHCHECK_PORT=${PORT}" in env for env in values("runtime", "ENV"))
    assert values("runtime", "EXPOSE") == ["${PORT}"]
    assert values("runtime", "ENTRYPOINT") == ['["quartet-service"]']
    assert values("runtime", "CMD") == ['["api"]']
    # Nothing from the build context, no pip, no wheels: the kernel's environment, then the service's additions.
    assert values("runtime", "COPY") == [
        "--from=kernel /opt/quartet/venv /opt/quartet/venv",
        "--from=service /opt/deps/ /",
        "--from=service /opt/app/ /",
    ]


def test_build_context_is_only_what_the_images_module_stages() -> None:
    """Every context COPY reads .local/images/, the only path .dockerignore lets through (never .local/docker)."""
    rules = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert rules[0] == "**"
    # Of .local (or of anything hidden) only .local/images/ gets in, and never its wheel cache.
    assert [rule for rule in rules if rule.startswith(("!.", "!*"))] == ["!.local/images/"]
    assert rules.index(".local/images/.cache") > rules.index("!.local/images/")
    context_copies = [i["value"] for i in instructions() if i["instruction"] == "COPY" and "--from" not in i["value"]]
    assert context_copies
    for copy in context_copies:
        *sources, _dest = copy.split()
        assert all(source.startswith(".local/images/") for source in sources), copy


@pytest.fixture(scope="module")
def built() -> dict[str, str]:
    """Every service image, built (or found up to date in the build cache): its reference, by service."""
    tag = os.environ.get("QUARTET_IMAGE_TAG")
    images.build(list(BY_PROGRAM), tag)
    return {p: f"quartet/{p}:{tag}" if tag else images.IMAGES[p].tag for p in BY_PROGRAM}


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A docker command against the engine the images were built in."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, env=images.docker_env(), check=check)


def in_image(image: str, script: str) -> subprocess.CompletedProcess[str]:
    """A shell script run in a throwaway container of the image (as the image's own user)."""
    return docker("run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", script, check=False)


def pip_list(image: str) -> dict[str, str]:
    """`pip list` of the image's environment, by pip's staged wheel mounted read-only (the image has no pip)."""
    (wheel,) = (images.STAGE_DIR / "pip").glob("pip-*.whl")
    mount = f"type=bind,source={wheel},target=/mnt/pip.whl,readonly"
    # --path: only the environment's site-packages, not the wheel pip itself runs from.
    site = "/opt/quartet/venv/lib/python3.11/site-packages"
    command = ["--mount", mount, "--entrypoint", "python", image, "/mnt/pip.whl/pip", "list", "--path", site]
    listed = docker("run", "--rm", "--network", "none", *command, "--format", "json", "--disable-pip-version-check")
    return {canonicalize_name(d["name"]): d["version"] for d in json.loads(listed.stdout)}


# The workspace's kernel packages, each in a directory of its own name at the repo's root.
KERNEL_DIRS = ("shared", "contracts", "tools")


@cache
def workspace_version(program: str) -> str:
    """A workspace package's version, from its pyproject.toml."""
    path = REPO / (program if program in KERNEL_DIRS else f"services/{program}") / "pyproject.toml"
    return str(tomllib.loads(path.read_text())["project"]["version"])


def expected_distributions(program: str) -> dict[str, str]:
    """What the lock says a service's image holds: its pins for Python 3.11.2, kernel, contracts and service."""
    pins = {pin.name: pin.version for pin in images.locked(f"quartet-{program}")}
    kernel = {f"quartet-{name}": workspace_version(name) for name in ("shared", "contracts")}
    return {**pins, **kernel, f"quartet-{program}": workspace_version(program)}


def forbidden_distributions(program: str) -> dict[str, str]:
    """Why each distribution the service must not carry is forbidden: tooling groups, other services."""
    own = expected_distributions(program)
    reasons = dict.fromkeys(INSTALLERS, "installer")
    reasons["quartet-tools"] = "tooling"
    reasons |= {pin.name: "tooling" for pin in images.locked("quartet-tools") if pin.name not in own}
    for group in ("dev", "bench"):
        reasons |= {pin.name: f"{group} group" for pin in images.locked(group=group) if pin.name not in own}
    for other in set(BY_PROGRAM) - {program}:
        reasons[f"quartet-{other}"] = f"the {other} service"
        exclusive = {pin.name for pin in images.locked(f"quartet-{other}")} - set(own)
        reasons |= dict.fromkeys(exclusive, f"only {other} needs it")
    return reasons


@pytest.mark.docker
# The first test builds the four images: cold, on two busy cores, that takes longer than the default timeout.
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("program", sorted(BY_PROGRAM))
def test_image_holds_its_service_the_kernel_and_their_locked_pins_only(program: str, built: dict[str, str]) -> None:
    """pip list: exactly the lock's pins for this service and the two workspace wheels; nothing forbidden."""
    installed = pip_list(built[program])
    found = {name: why for name, why in forbidden_distributions(program).items() if name in installed}
    assert not found, f"{program} image holds {found}"
    assert installed == expected_distributions(program)


@pytest.mark.docker
# The first test builds the four images: cold, on two busy cores, that takes longer than the default timeout.
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("program", sorted(BY_PROGRAM))
def test_image_has_no_compiler_uv_or_pip(program: str, built: dict[str, str]) -> None:
    """Not on the PATH, no such executable anywhere on the filesystem, pip not importable."""
    names = " -o ".join(f"-name '{name}'" for name in [*EXECUTABLES, "gcc-*", "cc1*", "pip-*"])
    found = f"find / -xdev -type f -perm /111 \\( {names} \\) -print"
    script = f"for c in {' '.join(EXECUTABLES)}; do command -v $c; done; {found}"
    result = in_image(built[program], f"{script} 2>/dev/null; python -c 'import pip' 2>/dev/null && echo import pip")
    assert result.stdout.split() == []


@pytest.mark.docker
# The first test builds the four images: cold, on two busy cores, that takes longer than the default timeout.
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("program", sorted(BY_PROGRAM))
def test_image_runs_as_10001_and_its_console_script_starts(
    program: str, built: dict[str, str], service_roles: dict[str, Roles]
) -> None:
    """The image's user is 10001; `IMAGE --help` (its console script, from the environment alone) lists the roles
    the service's console script accepts here, in the workspace."""
    image = built[program]
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert config["User"] == "10001:10001"
    assert in_image(image, "id -u; id -g").stdout.split() == ["10001", "10001"]
    started = docker("run", "--rm", "--network", "none", image, "--help", check=False)
    assert started.returncode == 0, started.stderr[-3000:]
    require_roles(program, {"api"}, service_roles)
    in_the_image = re.search(r"\{([a-z,-]+)\}", started.stdout)
    assert in_the_image, started.stdout
    assert set(in_the_image.group(1).split(",")) == service_roles[program].accepted
    if program == "rental-manager":
        package = in_image(image, "python -c 'import rental_manager; print(rental_manager.__path__[0])'").stdout.strip()
        migrations = in_image(image, f"test -f {package}/migrations/env.py && echo present")
        assert migrations.stdout.strip() == "present", "migrations missing from the wheel"


@pytest.mark.docker
# The first test builds the four images: cold, on two busy cores, that takes longer than the default timeout.
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("program", sorted(BY_PROGRAM))
def test_image_size_within_one_and_a_half_times_its_environment_and_base(
    program: str, built: dict[str, str], record_property: Any
) -> None:
    """Image size <= 1.5 x (installed environment + base): no wheels, caches or copies left in its layers."""
    image = built[program]
    size = int(docker("image", "inspect", "--format", "{{.Size}}", image).stdout)
    base = int(docker("image", "inspect", "--format", "{{.Size}}", images.engine.BASE_IMAGE).stdout)
    venv = int(in_image(image, "du -sk /opt/quartet/venv").stdout.split()[0]) * 1024
    mb = {"image": size / 1e6, "venv": venv / 1e6, "base": base / 1e6, "ratio": size / (venv + base)}
    record_property("sizes", mb)
    print(f"{program}: " + ", ".join(f"{key} {value:.2f}" for key, value in mb.items()))
    assert size <= SIZE_FACTOR * (venv + base), mb
