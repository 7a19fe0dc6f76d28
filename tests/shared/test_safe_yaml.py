"""YAML from users within limits: alias bombs, deep nesting, recursive aliases and oversized documents refused."""

from __future__ import annotations

import time

import pytest
from quartet_shared.safe_yaml import YamlLimits, YamlSyntaxError, YamlTooComplex, check_events, safe_load
from ruamel.yaml import YAML

from tests.support.hostile_yaml import alias_bomb


@pytest.mark.parametrize(
    ("text", "words", "line"),
    [
        (alias_bomb(6), "expands to more than 500,000 nodes", 6),
        (alias_bomb(9), "expands to more than 500,000 nodes", 6),
        ("[" * 1000 + "]" * 1000, "nested deeper than 64 levels", 1),
        ("a:\n" + "".join(" " * i + "- \n" for i in range(100)), "nested deeper than 64 levels", 65),
        ("a: &a [b, *a]\n", "refers to a node that contains it", 1),
        ("a: &a [[[[[[[[[[x]]]]]]]]]]\nb: " + "[" * 58 + "*a" + "]" * 58, "*a nests deeper", 2),
    ],
    ids=["6 levels of 10", "9 levels of 10", "1000 brackets", "deep block list", "recursive", "deep alias"],
)
def test_documents_over_the_limits_are_refused_at_once(text: str, words: str, line: int) -> None:
    started = time.monotonic()
    with pytest.raises(YamlTooComplex) as refused:
        safe_load(text)
    assert time.monotonic() - started < 1.0  # a guard, not a benchmark: six levels took 16 s of CPU before
    assert words in str(refused.value)
    assert refused.value.line == line


def test_the_size_is_limited_before_parsing() -> None:
    with pytest.raises(YamlTooComplex, match="over the limit of 100"):
        safe_load("x" * 101, YamlLimits(max_chars=100))


def test_ordinary_anchors_and_merges_load() -> None:
    text = "base: &b {lr: 0.1, epochs: 3}\nfast: {<<: *b, lr: 0.5}\nboth: [*b, *b]\n"
    data = safe_load(text)
    assert data["fast"] == {"lr": 0.5, "epochs": 3}
    assert data["both"] == [{"lr": 0.1, "epochs": 3}] * 2


def test_limits_count_expanded_nodes_exactly() -> None:
    text = alias_bomb(2)  # the mapping and its 3 keys (4), a0 (11), a1 (1 + 10 * 11), a2 (1 + 10 * 111)
    assert safe_load(text, YamlLimits(max_nodes=1_237))["c"][0][0] == ["x"] * 10
    with pytest.raises(YamlTooComplex):
        safe_load(text, YamlLimits(max_nodes=1_236))


def test_ruamel_events_are_checked_the_same_way() -> None:
    with pytest.raises(YamlTooComplex, match="expands to more than"):
        check_events(YAML(typ="rt").parse(alias_bomb(6)))
    check_events(YAML(typ="rt").parse(alias_bomb(3)))


@pytest.mark.parametrize(
    ("text", "where"),
    [("a: [1, 2\nb: }", (2, 2)), ("a: " + "[" * 1_000_000, (1, 1003)), ("a: *nowhere\n", (1, 4))],
    ids=["unclosed", "a million brackets", "undefined alias"],
)
def test_syntax_errors_name_their_place_and_are_value_errors(text: str, where: tuple[int, int]) -> None:
    started = time.monotonic()
    with pytest.raises(YamlSyntaxError) as refused:
        safe_load(text)
    assert time.monotonic() - started < 1.0
    assert (refused.value.line, refused.value.column) == where
    assert isinstance(refused.value, ValueError)
