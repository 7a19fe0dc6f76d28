"""YAML from users, read within limits: document size, nesting depth and nodes after alias expansion.

A safe loader still lets a 300-byte document of nested aliases (`b: [*a, *a, ...]` ten times per level)
expand to millions of nodes when it is walked, and 1,000 nested `[` overflow the composer's recursion.
The check runs over the parser's event stream, which is flat (no recursion) and costs what the text costs:
each anchor's expanded size and height are remembered, so an alias counts what it will expand to. It
refuses, naming the line, before anything is composed. The check parses with libyaml (PyYAML's C parser):
the pure-Python scanners of PyYAML and ruamel.yaml look ahead over every open `[` for a possible key, which
is quadratic (1,000 brackets cost ruamel a second, 2 MB of them forever), so a reader that keeps ruamel for
its line numbers (the simulator) calls `check_text` first and only hands ruamel what passed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

# libyaml's safe loader when PyYAML was built with it, else the pure-Python one: safe either way.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STARTS = ("SequenceStartEvent", "MappingStartEvent")
_ENDS = ("SequenceEndEvent", "MappingEndEvent")


@dataclass(frozen=True)
class YamlLimits:
    """How large a document may be: characters, nesting depth, and nodes once every alias is expanded."""

    max_chars: int = 2_000_000
    max_depth: int = 64
    max_nodes: int = 500_000


DEFAULT_LIMITS = YamlLimits()


class YamlRefused(ValueError):
    """A document refused; `reason` says why, `line` and `column` (1-based, None if unknown) say where."""

    def __init__(self, reason: str, line: int | None = None, column: int | None = None) -> None:
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(f"{where}{reason}")
        self.reason = reason
        self.line = line
        self.column = column


class YamlTooComplex(YamlRefused):
    """A document over a size, depth or expansion limit."""


class YamlSyntaxError(YamlRefused):
    """A document that is not YAML."""


@dataclass
class _Open:
    anchor: str | None
    nodes: int = 1
    height: int = 1


def _where(event: Any) -> tuple[int | None, int | None]:
    mark = getattr(event, "start_mark", None)
    return (mark.line + 1, mark.column + 1) if mark is not None else (None, None)


def _refuse(event: Any, message: str) -> YamlTooComplex:
    return YamlTooComplex(message, *_where(event))


def check_events(events: Iterable[Any], limits: YamlLimits = DEFAULT_LIMITS) -> None:
    """Raise YamlTooComplex as soon as the event stream nests or expands beyond `limits`."""
    stack: list[_Open] = []
    anchors: dict[str, tuple[int, int]] = {}  # expanded nodes and height of each finished anchored node
    total = 0
    for event in events:
        kind = type(event).__name__
        if kind in _STARTS:
            stack.append(_Open(getattr(event, "anchor", None)))
            nodes, height = 1, 0
            if len(stack) > limits.max_depth:
                raise _refuse(event, f"nested deeper than {limits.max_depth} levels")
        elif kind in _ENDS:
            done = stack.pop()
            if done.anchor is not None:
                anchors[done.anchor] = (done.nodes, done.height)
            if stack:
                stack[-1].nodes += done.nodes
                stack[-1].height = max(stack[-1].height, done.height + 1)
            continue
        elif kind == "AliasEvent":
            name = event.anchor
            if any(frame.anchor == name for frame in stack):
                raise _refuse(event, f"alias *{name} refers to a node that contains it")
            nodes, height = anchors.get(name, (1, 0))
            if len(stack) + height > limits.max_depth:
                raise _refuse(event, f"alias *{name} nests deeper than {limits.max_depth} levels")
        elif kind == "ScalarEvent":
            nodes, height = 1, 0
            if event.anchor is not None:
                anchors[event.anchor] = (1, 0)
        else:
            continue
        total += nodes
        if total > limits.max_nodes:
            raise _refuse(event, f"expands to more than {limits.max_nodes:,} nodes (aliases counted as copies)")
        if kind not in _STARTS and stack:
            stack[-1].nodes += nodes
            stack[-1].height = max(stack[-1].height, height + 1)


def check_size(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> None:
    """Raise YamlTooComplex if `text` is longer than the limit."""
    if len(text) > limits.max_chars:
        raise YamlTooComplex(f"document of {len(text):,} characters, over the limit of {limits.max_chars:,}")


def _syntax_error(exc: yaml.YAMLError) -> YamlSyntaxError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        reason = " ".join(str(p) for p in (exc.context, exc.problem) if p) or type(exc).__name__
        return YamlSyntaxError(reason, *((mark.line + 1, mark.column + 1) if mark is not None else (None, None)))
    return YamlSyntaxError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def check_text(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> None:
    """Raise YamlTooComplex if `text` is over `limits`, YamlSyntaxError if it is not YAML; libyaml, linear time."""
    check_size(text, limits)
    try:
        check_events(yaml.parse(text, Loader=_Loader), limits)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc) from None


def safe_load(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> Any:
    """PyYAML's safe load of one document once `check_text` passed (YamlRefused if not)."""
    check_text(text, limits)
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:  # parsed, but not one value: several documents, an undefined alias
        raise _syntax_error(exc) from None


__all__ = [
    "DEFAULT_LIMITS",
    "YamlLimits",
    "YamlRefused",
    "YamlSyntaxError",
    "YamlTooComplex",
    "check_events",
    "check_size",
    "check_text",
    "safe_load",
]
