"""Errors of the service layer beside the domain's: who may do what, and what does not exist."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the service layer's own errors."""


class Unauthorized(ServiceError):
    """No credentials, or credentials that do not hold (401)."""


class Forbidden(ServiceError):
    """The caller may see the resource but not do this to it (403)."""


class NotFound(ServiceError):
    """No such resource, or none the caller may know exists (404)."""

    def __init__(self, resource: str, ident: object | None = None) -> None:
        self.resource = resource
        super().__init__(f"no {resource} {ident}" if ident is not None else f"no such {resource}")


class Conflict(ServiceError):
    """The request clashes with existing state, such as a taken e-mail address (409)."""


class TooManyAttempts(ServiceError):
    """Too many failed sign-ins for the account or from the address (429, retry after `retry_after_s`)."""

    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"too many failed sign-ins; try again in {retry_after_s} s")


class TryAgain(Exception):
    """The transaction lost a race with a concurrent one (a deadlock, a serialisation failure): rerun it.

    Not a ServiceError: when the retries run out the storage's own error (`original`) is raised, a transient one.
    """

    def __init__(self, original: Exception) -> None:
        self.original = original
        super().__init__(str(original))
