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
from dataclasses import dataclass, field
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


@dataclass
class _Expansion:
    """The walk so far: the open collections, each finished anchor's expanded size and height, and the node total."""

    limits: YamlLimits
    stack: list[_Open] = field(default_factory=list)
    anchors: dict[str, tuple[int, int]] = field(default_factory=dict)
    total: int = 0

    def open(self, event: Any) -> None:
        """A sequence or mapping starts."""
        self.stack.append(_Open(getattr(event, "anchor", None)))
        if len(self.stack) > self.limits.max_depth:
            raise _refuse(event, f"nested deeper than {self.limits.max_depth} levels")
        self._count(event, 1)

    def close(self) -> None:
        """The innermost open collection ends: its size and height go to its anchor and its parent."""
        done = self.stack.pop()
        if done.anchor is not None:
            self.anchors[done.anchor] = (done.nodes, done.height)
        self._nest(done.nodes, done.height)

    def alias(self, event: Any) -> None:
        """An alias counts as a copy of what its anchor expanded to."""
        name = event.anchor
        if any(frame.anchor == name for frame in self.stack):
            raise _refuse(event, f"alias *{name} refers to a node that contains it")
        nodes, height = self.anchors.get(name, (1, 0))
        if len(self.stack) + height > self.limits.max_depth:
            raise _refuse(event, f"alias *{name} nests deeper than {self.limits.max_depth} levels")
        self._count(event, nodes)
        self._nest(nodes, height)

    def scalar(self, event: Any) -> None:
        """A scalar is one node."""
        if event.anchor is not None:
            self.anchors[event.anchor] = (1, 0)
        self._count(event, 1)
        self._nest(1, 0)

    def _count(self, event: Any, nodes: int) -> None:
        self.total += nodes
        if self.total > self.limits.max_nodes:
            raise _refuse(event, f"expands to more than {self.limits.max_nodes:,} nodes (aliases counted as copies)")

    def _nest(self, nodes: int, height: int) -> None:
        if self.stack:
            self.stack[-1].nodes += nodes
            self.stack[-1].height = max(self.stack[-1].height, height + 1)


def check_events(events: Iterable[Any], limits: YamlLimits = DEFAULT_LIMITS) -> None:
    """Raise YamlTooComplex as soon as the event stream nests or expands beyond `limits`."""
    walk = _Expansion(limits)
    for event in events:
        kind = type(event).__name__
        if kind in _STARTS:
            walk.open(event)
        elif kind in _ENDS:
            walk.close()
        elif kind == "AliasEvent":
            walk.alias(event)
        elif kind == "ScalarEvent":
            walk.scalar(event)


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
