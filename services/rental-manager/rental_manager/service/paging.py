"""Paging of query results into Page models."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, func, select

from rental_manager.service.schemas import Page
from rental_manager.service.unit import UnitOfWork

P = TypeVar("P", bound=BaseModel)


def paged(uow: UnitOfWork, stmt: Select[Any], model: type[P], page: int, page_size: int) -> Page[P]:
    """Page `page` (1-based) of `stmt`'s rows as `model`, with the total count."""
    total = uow.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = uow.session.scalars(stmt.offset((page - 1) * page_size).limit(page_size)).all()
    return Page[model](  # type: ignore[valid-type]
        items=[model.model_validate(r) for r in rows], total=total, page=page, page_size=page_size
    )
