"""No module under tests/ imports a test module: a helper two test files share lives in a plain module beside them
(or in tests/support/), a fixture in the directory's conftest.py, so each test file stands alone."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_test_module(name: str) -> bool:
    return name.rsplit(".", 1)[-1].startswith("test_")


def imported_test_modules(source: str) -> list[str]:
    """The test modules `source` imports: by `import`, by `from ... import`, or by name through importlib."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if _is_test_module(module):
                found.append(module)
            elif node.level and not node.module:
                found += [f".{alias.name}" for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith(("import_module", "__import__")):
            named = node.args[0] if node.args else None
            if isinstance(named, ast.Constant) and isinstance(named.value, str) and _is_test_module(named.value):
                found.append(named.value)
    return found


def test_the_probe_finds_each_way_of_importing_a_test_module() -> None:
    source = (
        "from tests.deploy.test_compose import compose\n"
        "from .test_helm import helm\n"
        "from . import test_api\n"
        "import tests.shared.test_jobservice\n"
        "importlib.import_module('tests.services.simulator.test_simulator_chaos')\n"
        "from tests.support.scripted_jobs import spec\n"
        "importlib.import_module('bench_kernel')\n"
    )
    assert imported_test_modules(source) == [
        "tests.deploy.test_compose",
        ".test_helm",
        ".test_api",
        "tests.shared.test_jobservice",
        "tests.services.simulator.test_simulator_chaos",
    ]


def test_no_module_under_tests_imports_a_test_module() -> None:
    offenders = {
        str(path.relative_to(TESTS)): imported
        for path in sorted(TESTS.rglob("*.py"))
        if (imported := imported_test_modules(path.read_text()))
    }
    assert offenders == {}
