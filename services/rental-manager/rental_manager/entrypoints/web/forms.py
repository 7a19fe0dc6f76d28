"""From HTML form fields to the service layer's request models, and from their errors back to the fields.

Forms speak the browser's language (money in major units with a decimal point, dates as text, empty means
absent); the request models (`HouseCreate`, `PaymentCreate`, ...) stay the only place that decides what is
valid. A model's validation errors, or a domain `InvalidValue`, come back as messages under the inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

CENTS = Decimal(100)


class FormInvalid(Exception):
    """Some fields of a form are wrong: `errors` maps each input's name to a message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def cents(value: str, field: str, errors: dict[str, str]) -> int | None:
    """An amount typed in major units ("950" or "950.50") as integer cents; None when left empty."""
    text = value.replace(",", "").replace(" ", "").lstrip("€$£")
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        errors[field] = "enter an amount such as 950 or 950.50"
        return None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        errors[field] = "use at most two decimal places"
        return None
    return int(amount * CENTS)


def moment(value: str) -> str | None:
    """A `datetime-local` input (no zone) read as UTC, in ISO form; None when empty."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC).isoformat()
    except ValueError:
        return value  # left as typed, so the model names the field


def present(form: Mapping[str, str], *names: str) -> dict[str, str]:
    """The named fields that were filled in."""
    return {name: form[name] for name in names if form.get(name)}


def _message(error: Mapping[str, Any]) -> str:
    if error.get("type") == "missing":
        return "This field is required."
    text = str(error.get("msg", "invalid value"))
    return text.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def parse(
    model: type[M],
    data: Mapping[str, Any],
    *,
    fields: Mapping[str, str] | None = None,
    pending: dict[str, str] | None = None,
) -> M:
    """`model` built from `data`, or FormInvalid naming the form inputs (renamed by `fields`) that are wrong."""
    rename = dict(fields or {})
    errors = dict(pending or {})
    try:
        result = model.model_validate(dict(data))
    except ValidationError as exc:
        for error in exc.errors():
            loc = error.get("loc") or ("form",)
            name = str(loc[0])
            errors.setdefault(rename.get(name, name), _message(error))
        raise FormInvalid(errors) from exc
    if errors:
        raise FormInvalid(errors)
    return result
