"""The domain stays pure: numpy and computation-only standard modules, no I/O, no plotting, no messaging."""

from __future__ import annotations

import ast
from pathlib import Path

import training_worker.domain

# scipy is computation only: its optimizers (L-BFGS for the regularization paths) do no I/O.
ALLOWED = {
    "__future__",
    "collections",
    "dataclasses",
    "itertools",
    "typing",
    "math",
    "csv",
    "numpy",
    "scipy",
    "training_worker",
}


def test_domain_imports_no_io() -> None:
    root = Path(training_worker.domain.__file__).parent
    modules = sorted(root.glob("*.py"))
    assert len(modules) >= 8
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in ALLOWED, f"{path.name} imports {name}"
                if top == "training_worker":
                    assert name.startswith("training_worker.domain"), f"{path.name} imports {name}"
