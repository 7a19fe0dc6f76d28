"""The schema registry: every message type is a pydantic model keyed by its CloudEvents `ce_type`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

M = TypeVar("M", bound=type[BaseModel])


class Message(BaseModel):
    """Base of every message body: unknown fields are an error, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class EventType:
    """A registered message type: its `ce_type`, its model and the topic it travels on."""

    ce_type: str
    model: type[BaseModel]
    topic: str
    description: str


class UnknownEventType(LookupError):
    """Raised when a `ce_type` has no registered schema."""


_REGISTRY: dict[str, EventType] = {}


def event_type(ce_type: str, *, topic: str) -> Callable[[M], M]:
    """Register a pydantic model as the schema of `ce_type` on `topic` (a class decorator)."""

    def register(model: M) -> M:
        existing = _REGISTRY.get(ce_type)
        if existing is not None and existing.model is not model:
            raise ValueError(f"{ce_type} is already registered to {existing.model.__qualname__}")
        doc = (model.__doc__ or "").strip().splitlines()
        _REGISTRY[ce_type] = EventType(ce_type, model, topic, doc[0] if doc else "")
        model.__ce_type__ = ce_type  # type: ignore[attr-defined]
        return model

    return register


def ce_type_of(model: type[BaseModel] | BaseModel) -> str:
    """The `ce_type` a model was registered under."""
    cls = model if isinstance(model, type) else type(model)
    try:
        return str(cls.__ce_type__)  # type: ignore[attr-defined]
    except AttributeError as exc:
        raise UnknownEventType(f"{cls.__qualname__} is not a registered message type") from exc


def lookup(ce_type: str) -> EventType:
    """The registered type for `ce_type`, or UnknownEventType."""
    load_all()
    try:
        return _REGISTRY[ce_type]
    except KeyError as exc:
        raise UnknownEventType(f"no schema is registered for ce_type {ce_type!r}") from exc


def all_types() -> list[EventType]:
    """Every registered type, sorted by `ce_type`."""
    load_all()
    return sorted(_REGISTRY.values(), key=lambda t: t.ce_type)


def load_all() -> None:
    """Import every schema module so that its types register themselves."""
    import importlib
    import pkgutil

    from quartet_contracts import schemas

    for info in pkgutil.iter_modules(schemas.__path__):
        importlib.import_module(f"{schemas.__name__}.{info.name}")
