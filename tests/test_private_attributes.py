"""No test assigns a private attribute (issue 19, point 3): a test drives code through its ports and fakes, so a
refactoring of what is private never leaves a test setting state the code no longer reads."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _private_assignments(source: str) -> list[int]:
    """Lines that assign `obj._name` (other than on self or cls) or set one with setattr(obj, "_name", ...)."""
    lines: list[int] = []
    for node in ast.walk(ast.parse(source)):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = [
                t for target in node.targets for t in (target.elts if isinstance(target, ast.Tuple) else [target])
            ]
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            named = node.args[1] if name == "setattr" and len(node.args) >= 2 else None
            if isinstance(named, ast.Constant) and str(named.value).startswith("_"):
                lines.append(node.lineno)
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and target.attr.startswith("_")
                and not target.attr.startswith("__")
                and not (isinstance(target.value, ast.Name) and target.value.id in {"self", "cls"})
            ):
                lines.append(node.lineno)
    return lines


def test_the_check_finds_each_way_of_setting_a_private_attribute() -> None:
    source = "r._producer = p\na, b._x = 1, 2\nc._n += 1\nsetattr(d, '_y', 1)\nmonkeypatch.setattr(e, '_z', 1)\n"
    assert _private_assignments(source) == [1, 2, 3, 4, 5]
    assert _private_assignments("self._x = 1\nr.public = 2\nsetattr(d, 'y', 1)\n") == []


def test_no_test_assigns_a_private_attribute() -> None:
    found = [
        f"{path.relative_to(TESTS)}:{line}"
        for path in sorted(TESTS.rglob("*.py"))
        if path != Path(__file__).resolve()
        for line in _private_assignments(path.read_text())
    ]
    assert found == []
