"""The rental manager's layers import only downwards: domain <- service <- adapters <- entrypoints.

Read from the source with ast, so a new import in the wrong direction fails here before anyone runs it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import rental_manager

ROOT = Path(rental_manager.__file__).resolve().parent
LAYERS = ("domain", "service", "adapters", "entrypoints")
# What each layer may not import (the layers above it).
FORBIDDEN = {
    "domain": {"service", "adapters", "entrypoints"},
    "service": {"adapters", "entrypoints"},
    "adapters": {"entrypoints"},
    "entrypoints": set(),
}
# Libraries a pure domain never needs.
FRAMEWORKS = {"sqlalchemy", "fastapi", "starlette", "redis", "kafka", "pydantic", "quartet_shared"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _modules(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


def _layer_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "rental_manager" and parts[1] in LAYERS else None


def test_every_layer_is_a_package_with_modules() -> None:
    for layer in LAYERS:
        assert (ROOT / layer / "__init__.py").is_file(), layer
        assert len(_modules(layer)) > 1, layer


def test_no_layer_imports_a_layer_above_it() -> None:
    wrong = []
    for layer in LAYERS:
        for path in _modules(layer):
            for name in _imports(path):
                if _layer_of(name) in FORBIDDEN[layer]:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(sorted(wrong))


def test_the_domain_is_pure_python() -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules("domain")
        for name in _imports(path)
        if name.split(".")[0] in FRAMEWORKS
    ]
    assert not wrong, "\n".join(wrong)


def test_the_service_layer_knows_nothing_of_storage() -> None:
    # Queries, sessions and database errors live in the adapters, behind the ports of `service.unit`.
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules("service")
        for name in _imports(path)
        if name.split(".")[0] in {"sqlalchemy", "alembic", "psycopg"}
    ]
    assert not wrong, "\n".join(wrong)


def test_the_checks_see_the_imports_they_forbid() -> None:
    # The rules above pass vacuously if `_imports` misses `from x import y` or `import x.y`.
    names = _imports(ROOT / "adapters" / "repository.py")
    assert {"sqlalchemy", "rental_manager.service.unit", "rental_manager.domain.entities.Bill"} <= names
