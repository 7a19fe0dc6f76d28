"""Reading scenario files: YAML with line numbers kept (ruamel.yaml), so every error names its line and field.

A pool entry may name a job file instead of spelling the spec out (`- file: jobs/training-linear.yaml`); that
file is read the same way and an error inside it names that file's line. Job files come only from the scenario
directory (the scenario file's own, or the simulator's configured one for scenarios sent over HTTP): a name
that is absolute, climbs with `..` or leads out through a symlink gets the same answer whether or not the
file exists, and nothing outside is opened, so no error can echo it. Every document is checked against size,
depth and alias-expansion limits before it is composed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError
from quartet_contracts.validation import shown
from quartet_shared.safe_yaml import YamlLimits, YamlRefused, YamlSyntaxError, check_text
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from simulator.domain.scenario import Scenario

Loc = tuple[str | int, ...]

BUNDLED_DIR = Path(__file__).resolve().parent / "scenarios"
# Scenarios are a few kilobytes; these bounds leave room for large inline pools and refuse alias bombs at once.
LIMITS = YamlLimits(max_chars=2_000_000, max_depth=32, max_nodes=100_000)
_MAX_NAME = 1024
OUTSIDE = "job files come only from the scenario directory: give a relative path inside it, without '..'"


@dataclass(frozen=True)
class ScenarioProblem:
    """One mistake: where (file, line, column, field path) and what."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.column or 1}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for problem bodies)."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "field": self.field,
            "message": self.message,
        }


class ScenarioError(ValueError):
    """A scenario that cannot be used; `problems` lists each mistake with its line and field."""

    def __init__(self, problems: Sequence[ScenarioProblem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"invalid scenario ({len(self.problems)} problem(s)):\n{lines}")


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def _read(text: str, source: str) -> Any:
    try:
        check_text(text, LIMITS)
        return _yaml().load(text)
    except YamlRefused as exc:
        what = "YAML syntax" if isinstance(exc, YamlSyntaxError) else "YAML refused"
        refused = ScenarioProblem(source, exc.line, exc.column, "", f"{what}: {exc.reason}")
        raise ScenarioError([refused]) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p) or str(exc)
        raise ScenarioError([ScenarioProblem(source, line, column, "", f"YAML syntax: {message}")]) from None
    except YAMLError as exc:
        raise ScenarioError([ScenarioProblem(source, None, None, "", f"YAML: {exc}")]) from None


def load_scenario(path: Path, scenario_dir: Path | None = None) -> Scenario:
    """Read and validate a scenario file; its job files come from `scenario_dir` (None: the file's directory)."""
    try:
        text = _read_limited(path)
    except OSError as exc:
        raise ScenarioError(
            [ScenarioProblem(str(path), None, None, "", f"cannot read: {exc.strerror or exc}")]
        ) from None
    return parse_scenario(text, str(path), scenario_dir or path.parent)


def parse_scenario(text: str, source: str = "<scenario>", scenario_dir: Path | None = None) -> Scenario:
    """Validate scenario YAML (or JSON, which is YAML) text; job files come from `scenario_dir` (None: bundled)."""
    root = _read(text, source)
    if not isinstance(root, CommentedMap):
        raise ScenarioError([ScenarioProblem(source, 1, 1, "", "a scenario is a mapping of keys to values")])
    origins: dict[int, str] = {}
    problems = _inline_pool_files(root, source, scenario_dir or BUNDLED_DIR, origins)
    if problems:
        raise ScenarioError(problems)
    try:
        scenario = Scenario.model_validate(plain(root))
    except ValidationError as exc:
        raise ScenarioError(
            [_problem(root, tuple(e["loc"]), _message(e), source, origins, e["type"]) for e in exc.errors()]
        ) from None
    cross = scenario.problems()
    if cross:
        raise ScenarioError([_problem(root, loc, msg, source, origins, "value_error") for loc, msg in cross])
    return scenario


def _read_limited(path: Path) -> str:
    """The file's text, refusing (YAML-limit style) a file longer than a scenario may be without reading it all."""
    with path.open(encoding="utf-8") as handle:
        return handle.read(LIMITS.max_chars + 1)


def job_file(scenario_dir: Path, name: object) -> Path | None:
    """The job file `name` inside `scenario_dir`, or None if the name could lead anywhere else."""
    if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME or "\\" in name or "\x00" in name:
        return None
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts:
        return None
    root = scenario_dir.resolve()
    # resolve() follows symlinks: a link inside the directory that points out of it is outside too.
    path = (root / relative).resolve()
    return path if path.is_relative_to(root) and path != root else None


def scenario_from_data(data: Mapping[str, Any], source: str = "<request>") -> Scenario:
    """Validate an already-parsed scenario (a JSON body); problems name fields but no lines."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(
            [ScenarioProblem(source, None, None, dotted(tuple(e["loc"])), _message(e)) for e in exc.errors()]
        ) from None
    cross = scenario.problems()
    if cross:
        raise ScenarioError([ScenarioProblem(source, None, None, dotted(loc), msg) for loc, msg in cross])
    return scenario


def plain(node: Any) -> Any:
    """ruamel's round-trip nodes as plain dicts, lists, str, int, float and bool."""
    if isinstance(node, Mapping):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def dotted(loc: Loc) -> str:
    """A pydantic location as a field path: `mix[0].pool[2].spec.epochs`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _message(error: Mapping[str, Any]) -> str:
    kind = error.get("type")
    if kind == "extra_forbidden":
        return "unknown key (not a field here; check its spelling and indentation)"
    if kind == "missing":
        return "required field is missing"
    return str(error.get("msg", "invalid"))


def _inline_pool_files(
    root: CommentedMap, source: str, base_dir: Path, origins: dict[int, str]
) -> list[ScenarioProblem]:
    """Replace each `file:` pool entry by the spec read from that file, remembering where it came from."""
    problems: list[ScenarioProblem] = []
    for loc, entry in _file_entries(root):
        if "spec" in entry:
            problems.append(_problem(root, loc, "give either file or spec, not both", source, origins, "value_error"))
            continue
        try:
            at_entry = partial(_problem, root, loc, source=source, origins=origins, kind="value_error")
            spec = _read_job_file(base_dir, entry["file"], at_entry)
        except ScenarioError as exc:
            problems.extend(exc.problems)
            continue
        origins[id(spec)] = str(entry["file"])
        position = entry.lc.data.get("file")
        entry["spec"] = spec
        if position is not None:
            entry.lc.data["spec"] = position
        del entry["file"]
    return problems


def _file_entries(root: CommentedMap) -> list[tuple[Loc, CommentedMap]]:
    """Every pool entry of the mix that names a job file, with the location of its `file` key."""
    mix = root.get("mix")
    if not isinstance(mix, CommentedSeq):
        return []
    found: list[tuple[Loc, CommentedMap]] = []
    for i, action in enumerate(mix):
        pool = action.get("pool") if isinstance(action, CommentedMap) else None
        if isinstance(pool, CommentedSeq):
            found += [
                (("mix", i, "pool", j, "file"), entry)
                for j, entry in enumerate(pool)
                if isinstance(entry, CommentedMap) and "file" in entry
            ]
    return found


def _read_job_file(base_dir: Path, name: Any, at_entry: Callable[[str], ScenarioProblem]) -> CommentedMap:
    """The job file `name` as a mapping; ScenarioError says why it cannot be used (`at_entry` places a reason)."""
    path = job_file(base_dir, name)
    if path is None:
        raise ScenarioError([at_entry(OUTSIDE)])
    try:
        found = path.is_file()
    except OSError:  # a name the file system refuses (too long, say) names no file either
        found = False
    if not found:
        raise ScenarioError([at_entry(f"no job file {shown(name)} in the scenario directory")])
    try:
        spec = _read(_read_limited(path), str(name))
    except (OSError, UnicodeDecodeError) as exc:
        why = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror or type(exc).__name__
        raise ScenarioError([at_entry(f"cannot read job file {shown(name)}: {why}")]) from exc
    if not isinstance(spec, CommentedMap):
        raise ScenarioError([ScenarioProblem(str(name), 1, 1, "", "a job file is a mapping of keys to values")])
    return spec


def _problem(root: Any, loc: Loc, message: str, source: str, origins: Mapping[int, str], kind: str) -> ScenarioProblem:
    """Walk `loc` through the YAML tree to the deepest node it reaches, and report that node's line."""
    node: Any = root
    file = source
    line, column = 1, 1
    path: list[str | int] = []
    for n, part in enumerate(loc):
        last = n == len(loc) - 1
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            line, column = _position(node, part, line, column, key=True)
            path.append(part)
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line, column = _position(node, part, line, column, key=False)
            path.append(part)
            node = node[part]
        elif last and isinstance(part, str) and kind == "missing":
            path.append(part)
        else:
            # A union's tag (or a validator's name) that pydantic puts in the location: not a key in the file.
            continue
        if id(node) in origins:
            file = origins[id(node)]
            line, column = 1, 1
    field = dotted(tuple(path))
    return ScenarioProblem(file, line, column, field, message)


def _position(node: Any, part: str | int, line: int, column: int, *, key: bool) -> tuple[int, int]:
    try:
        found = node.lc.key(part) if key else node.lc.item(part)
    except (KeyError, IndexError, TypeError, AttributeError):
        return line, column
    return int(found[0]) + 1, int(found[1]) + 1
