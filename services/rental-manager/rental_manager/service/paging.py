"""Paging: which page of a list a caller asks for, what a repository finds for it, and the Page it becomes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from rental_manager.service.schemas import Page

P = TypeVar("P", bound=BaseModel)
T = TypeVar("T")


@dataclass(frozen=True)
class Window:
    """Page `page` (1-based) of `size` rows."""

    page: int = 1
    size: int = 50

    @property
    def offset(self) -> int:
        """Rows before the page."""
        return (self.page - 1) * self.size


@dataclass(frozen=True)
class Found(Generic[T]):
    """The rows of one page and how many rows the whole list holds."""

    rows: list[T]
    total: int


@dataclass(frozen=True)
class Order:
    """A list's order: by `field` (newest or largest first when `descending`), ties broken by id, ascending."""

    field: str
    descending: bool = True


def given(where: Mapping[str, object]) -> dict[str, object]:
    """The filters a caller actually set (None means 'any')."""
    return {name: value for name, value in where.items() if value is not None}


def paged(found: Found[Any], model: type[P], window: Window) -> Page[P]:
    """A repository's page of rows as `model` read models."""
    return Page[model](  # type: ignore[valid-type]
        items=[model.model_validate(r) for r in found.rows], total=found.total, page=window.page, page_size=window.size
    )
