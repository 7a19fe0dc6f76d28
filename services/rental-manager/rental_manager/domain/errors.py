"""Domain errors: a refused state transition or broken rule (a conflict), or a bad value (naming its field)."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the rental domain raises."""


class InvalidTransition(DomainError):
    """A state change the entity's state machine does not allow (the API answers 409)."""

    def __init__(self, entity: str, current: str, target: str, detail: str | None = None) -> None:
        self.entity = entity
        self.current = current
        self.target = target
        super().__init__(detail or f"this {entity} is {current} and cannot become {target}")


class ForbiddenMove(DomainError):
    """A transition that exists, but not for this party, such as a tenant approving (the API answers 403)."""

    def __init__(self, entity: str, current: str, target: str, party: str) -> None:
        self.entity = entity
        self.current = current
        self.target = target
        super().__init__(f"the {party} cannot move a {entity} from {current} to {target}")


class RuleViolation(DomainError):
    """A business rule the request would break given the current state, such as overlapping leases (409)."""

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        super().__init__(detail)


class InvalidValue(DomainError):
    """A value that can never be right, whatever the state (the API answers 422 naming `field`)."""

    def __init__(self, field: str, detail: str) -> None:
        self.field = field
        super().__init__(detail)
