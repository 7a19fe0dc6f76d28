"""The planning domain stays pure: no file, network, plotting or serialisation imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[4] / "services" / "path-planner" / "path_planner" / "domain"
FORBIDDEN = {"os", "io", "pathlib", "json", "yaml", "pickle", "socket", "tifffile", "PIL", "matplotlib", "requests"}


@pytest.mark.parametrize("module", sorted(DOMAIN.rglob("*.py")), ids=lambda p: p.name)
def test_no_io_imports(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN, f"{module.name} imports {sorted(imported & FORBIDDEN)}"


def test_domain_modules_found() -> None:
    assert len(list(DOMAIN.rglob("*.py"))) >= 10
