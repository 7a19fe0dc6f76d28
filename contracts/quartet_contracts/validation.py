"""Validation errors that name the field a user must fix, for problem bodies and dead-letter reasons.

Pydantic locates an error where the validator ran: a model validator's error points at the whole model and
a discriminated union adds its tag to the path (`optimizer.gd.lr`). A validator that knows the culprit raises
`FieldError`, and `error_fields` turns pydantic's errors into `{"field", "message"}` pairs whose field is the
dotted path a user writes in the spec (`optimizer.lr`, `data.rows`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Errors quote what the user sent; a 600-digit number or a megabyte string is cut to this many characters.
ECHO_LIMIT = 40
# A message built by any validator is cut here, so that no value it quotes can make a problem body large.
MESSAGE_LIMIT = 400


class FieldError(ValueError):
    """A validator's error about one field, given as a dotted path relative to the model being validated."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def shown(value: Any, limit: int = ECHO_LIMIT) -> str:
    """`repr(value)` for an error message, cut to `limit` characters; huge integers by their size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"{'-' if value < 0 else ''}an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def capped(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """`message` cut to `limit` characters."""
    return message if len(message) <= limit else f"{message[: limit - 1]}…"


def _without_tags(loc: Sequence[int | str], data: Any) -> list[int | str]:
    """`loc` without the tags of discriminated unions, found by walking `data` beside it."""
    path: list[int | str] = []
    current: Any = data
    for part in loc:
        if isinstance(current, Mapping):
            if part in current:
                path.append(part)
                current = current[part]
                continue
            if isinstance(part, str) and part in [v for v in current.values() if isinstance(v, str)]:
                # A union's tag: pydantic inserts it into the path, the spec never spells it there.
                continue
        elif isinstance(current, list) and isinstance(part, int) and -len(current) <= part < len(current):
            path.append(part)
            current = current[part]
            continue
        path.append(part)
        current = None
    return path


def error_fields(
    errors: Iterable[Mapping[str, Any]], data: Any, *, skip: Sequence[str] = ("body",)
) -> list[dict[str, str]]:
    """`{"field", "message"}` for each pydantic error; leading `skip` parts (FastAPI's "body") are dropped."""
    out: list[dict[str, str]] = []
    for err in errors:
        loc = list(err.get("loc") or ())
        while loc and loc[0] in skip:
            loc.pop(0)
        path = [str(p) for p in _without_tags(loc, data)]
        message = str(err.get("msg", ""))
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):
            path.extend(cause.field.split("."))
            message = cause.message
        out.append({"field": ".".join(path) or "body", "message": capped(message)})
    return out


__all__ = ["FieldError", "capped", "error_fields", "shown"]
