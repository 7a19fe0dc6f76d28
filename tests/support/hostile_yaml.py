"""Hostile YAML for the tests of every reader of user YAML."""

from __future__ import annotations

import itertools


def alias_bomb(levels: int = 6) -> str:
    """Ten aliases per level over `levels` levels: a few hundred bytes that expand to 10**levels scalars."""
    names = "abcdefghijklmnopqrstuvwxyz"[: levels + 1]
    lines = ["a: &a [x,x,x,x,x,x,x,x,x,x]"]
    lines += [f"{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]" for prev, name in itertools.pairwise(names)]
    return "\n".join(lines) + "\n"


DEEP_BRACKETS = "[" * 1000
