"""The house limits (issue 19, point 7): no function over 60 lines, no class over 300, mccabe complexity at most 12.

Migrations are exempt (a migration is a script read once, top to bottom). The tests are held to the same limits as
the code. Complexity is also enforced by `ruff check` itself (C901 at 12 in pyproject.toml, no per-file
exception); the test here keeps the three limits and their probe in one place. `ALLOWED` is empty and stays so:
a function that grows past a limit is split, not allowed.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECKED = ("shared", "contracts", "tools", "services", "tests")
MAX_FUNCTION_LINES = 60
MAX_CLASS_LINES = 300
MAX_COMPLEXITY = 12

ALLOWED: dict[str, str] = {}


@dataclass(frozen=True)
class Definition:
    """A function or class: where it is, how long it is, and whether it is a class."""

    key: str
    line: int
    lines: int
    is_class: bool


def _sources() -> Iterator[Path]:
    for root in CHECKED:
        for path in sorted((REPO / root).rglob("*.py")):
            relative = path.relative_to(REPO)
            if "migrations" not in relative.parts and ".venv" not in relative.parts:
                yield path


def definitions(path: Path, root: Path = REPO) -> Iterator[Definition]:
    """Every function and class of `path`, nested ones too, keyed `path:qualname` with the path relative to `root`."""
    relative = path.relative_to(root).as_posix()
    pending: list[tuple[ast.AST, str]] = [(ast.parse(path.read_text(encoding="utf-8")), "")]
    while pending:
        node, prefix = pending.pop(0)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                end = child.end_lineno if child.end_lineno is not None else child.lineno
                length = end - child.lineno + 1
                yield Definition(f"{relative}:{name}", child.lineno, length, isinstance(child, ast.ClassDef))
                pending.append((child, f"{name}."))
            else:
                pending.append((child, prefix))


def too_long(found: Iterator[Definition]) -> dict[str, str]:
    """The definitions over the limit for their kind, each with its length."""
    return {
        d.key: f"{d.lines} lines" for d in found if d.lines > (MAX_CLASS_LINES if d.is_class else MAX_FUNCTION_LINES)
    }


def too_complex(paths: list[str], root: Path = REPO) -> dict[str, str]:
    """ruff's C901 findings at MAX_COMPLEXITY over `paths` (relative to `root`), keyed `path:qualname`."""
    command = [sys.executable, "-m", "ruff", "check", "--select", "C901", "--exit-zero", "--no-cache"]
    command += ["--config", f"lint.mccabe.max-complexity={MAX_COMPLEXITY}", "--output-format", "json", *paths]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120, check=True)
    findings = {}
    for item in json.loads(done.stdout):
        path = Path(item["filename"])
        at = {d.line: d.key for d in definitions(path, root)}
        findings[at.get(item["location"]["row"], path.as_posix())] = item["message"]
    return findings


def _report(found: dict[str, str]) -> str:
    return "\n".join(f"{key}: {why}" for key, why in found.items())


def test_no_function_over_60_lines_and_no_class_over_300() -> None:
    over = {k: v for path in _sources() for k, v in too_long(definitions(path)).items() if k not in ALLOWED}
    assert not over, "split these by concern (or allow them while someone splits them):\n" + _report(over)


def test_no_function_more_complex_than_12() -> None:
    over = {k: v for k, v in too_complex(["."]).items() if k not in ALLOWED}
    assert not over, "split these into functions that do one thing:\n" + _report(over)


def test_the_checks_catch_what_they_guard(tmp_path: Path) -> None:
    """A long function, a long class and a tangled function are each found, and nothing else."""
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    branches = "\n".join(f"    if x == {i}:\n        return {i}" for i in range(MAX_COMPLEXITY + 1))
    methods = "\n".join(f"    def m{i}(self) -> int:\n        return {i}\n" for i in range(MAX_CLASS_LINES // 3 + 1))
    probe = tmp_path / "probe.py"
    probe.write_text(
        f"def long() -> None:\n{body}\n\n\ndef tangled(x: int) -> int:\n{branches}\n    return -1\n\n\n"
        f"class Big:\n{methods}",
        encoding="utf-8",
    )
    assert sorted(too_long(definitions(probe, tmp_path))) == ["probe.py:Big", "probe.py:long"]
    assert list(too_complex(["probe.py"], tmp_path)) == ["probe.py:tangled"]


def test_each_allowance_says_which_point_of_issue_19_removes_it() -> None:
    vague = [key for key, why in ALLOWED.items() if not why.startswith("being split in issue 19 point ")]
    assert not vague, "say which point of issue 19 splits these: " + ", ".join(vague)
