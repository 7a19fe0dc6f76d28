"""The three kernel packages keep their direction: tooling on top, the runtime below it, the contracts at the ground.

Images install the runtime and the contracts, never the tooling: no runtime or service module imports
`quartet_tools`, and no service's locked dependency closure holds the tooling or anything only the tooling needs.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("training-worker", "path-planner", "rental-manager", "simulator")
RUNTIME_DIRS = [REPO / "shared" / "quartet_shared", *(REPO / "services" / s for s in SERVICES)]
CONTRACTS_DIR = REPO / "contracts" / "quartet_contracts"
# What a client of the contracts alone must not be made to install.
NOT_FOR_CONTRACTS = {"quartet_shared", "quartet_tools", "kafka", "redis", "fastapi", "sqlalchemy", "uvicorn"}


def imported_roots(path: Path) -> Iterator[tuple[int, str]]:
    """The top-level module of every import in `path` (function-level ones too), with its line."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module.split(".")[0]


def offending_imports(directories: list[Path], forbidden: set[str]) -> list[str]:
    """`file:line module` for each import of a forbidden top-level module under `directories`."""
    found = []
    for directory in directories:
        for path in sorted(directory.rglob("*.py")):
            where = path.relative_to(REPO)
            found += [f"{where}:{line} {root}" for line, root in imported_roots(path) if root in forbidden]
    return found


def test_no_runtime_or_service_module_imports_the_tooling() -> None:
    """The runtime kernel and every service import nothing from quartet_tools."""
    assert offending_imports(RUNTIME_DIRS, {"quartet_tools"}) == []


def test_the_contracts_import_no_runtime_no_tooling_and_no_client_library() -> None:
    """quartet_contracts stands alone: no runtime, tooling, Kafka, Redis, HTTP server or database import."""
    assert offending_imports([CONTRACTS_DIR], NOT_FOR_CONTRACTS) == []


def test_the_checker_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    """A lazy import is still an import: the scan walks the whole tree, not only the module's top."""
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from quartet_tools.infra import LOCAL\n    return LOCAL\n")
    assert list(imported_roots(module)) == [(2, "quartet_tools")]


@cache
def lock_graph() -> dict[str, set[str]]:
    """uv.lock's dependency graph: each package's dependencies, the extras it is asked for included."""
    packages = tomllib.loads((REPO / "uv.lock").read_text())["package"]
    by_name = {p["name"]: p for p in packages}
    graph: dict[str, set[str]] = {}
    for package in packages:
        deps = set()
        for dep in package.get("dependencies", []):
            deps.add(dep["name"])
            for extra in dep.get("extra", []):
                deps |= {d["name"] for d in by_name[dep["name"]].get("optional-dependencies", {}).get(extra, [])}
        graph[package["name"]] = deps
    return graph


def closure(name: str) -> set[str]:
    """`name` and everything it needs, by the lock."""
    graph, seen, todo = lock_graph(), set(), [name]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += graph.get(current, set())
    return seen


def tooling_only() -> set[str]:
    """What the tooling brings that the runtime does not: typer, rich and their own dependencies."""
    return closure("quartet-tools") - closure("quartet-shared")


def test_the_tooling_brings_its_own_dependencies() -> None:
    """The check below has something to find: the CLI's libraries are the tooling's alone."""
    assert {"quartet-tools", "typer", "rich"} <= tooling_only()


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_installs_the_tooling_or_its_dependencies(service: str) -> None:
    """A service's locked closure (what its image installs) holds nothing only the tooling needs."""
    assert closure(f"quartet-{service}") & tooling_only() == set()


def test_the_contracts_install_alone() -> None:
    """A client installing quartet-contracts gets pydantic, orjson and PyYAML's closure: no Kafka, no server."""
    assert closure("quartet-contracts") & {"kafka-python", "redis", "fastapi", "sqlalchemy", "quartet-shared"} == set()


FORM_READERS = {"Form", "File", "UploadFile", "OAuth2PasswordRequestForm"}


def reads_forms(service: str) -> bool:
    """Whether a service's code imports one of FastAPI's form or file parameters."""
    for path in (REPO / "services" / service).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fastapi")):
                continue
            if FORM_READERS & {alias.name for alias in node.names}:
                return True
    return False


def test_the_form_check_has_something_to_find() -> None:
    """The check below looks at real code: the console and the rental manager both read forms."""
    assert reads_forms("simulator") and reads_forms("rental-manager")


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_that_reads_forms_installs_python_multipart(service: str) -> None:
    """FastAPI reads a form only through python-multipart and, without it, fails when the routes are built: the
    image's process dies at start although every test in the development environment (which has it) passes."""
    if reads_forms(service):
        assert "python-multipart" in closure(f"quartet-{service}")
