"""`RentalService.run` on a scripted unit-of-work factory: a transaction that lost a race is rerun, a storage error
that is not a lost race is not, and once the attempts run out the storage's own error comes out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import pytest
from argon2 import PasswordHasher
from rental_manager.service.errors import TryAgain
from rental_manager.service.facade import RentalService
from rental_manager.service.unit import LeaseTerms, RentalTopics, UnitOfWork
from rental_manager.service.users import Credentials
from rental_manager.settings import RentalSettings

from tests.services.rental_manager.fakes import FakeStore, FakeUnitOfWork


class Deadlock(Exception):
    """Stands for the database's deadlock error."""


class Scripted:
    """A factory whose first `losses` transactions end in a lost race; `opened` counts the transactions."""

    def __init__(self, losses: int) -> None:
        self.losses = losses
        self.opened = 0
        self.store = FakeStore()

    @contextmanager
    def __call__(self, topics: RentalTopics, today: date, terms: LeaseTerms) -> Iterator[UnitOfWork]:
        self.opened += 1
        yield FakeUnitOfWork(self.store, today)
        if self.opened <= self.losses:
            raise TryAgain(Deadlock(f"attempt {self.opened}"))


def _service(factory: Scripted, commits: list[int]) -> RentalService:
    creds = Credentials(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1), "s" * 32, 600)
    return RentalService(RentalSettings(), creds, unit_of_work=factory, on_commit=lambda: commits.append(1), attempts=3)


def _handler(uow: UnitOfWork, value: int) -> int:
    uow.emitted.append(value)
    return value * 2


def test_a_transaction_that_lost_a_race_is_rerun_until_it_commits() -> None:
    factory, commits = Scripted(losses=2), []
    assert _service(factory, commits).run(_handler, 21) == 42
    assert (factory.opened, commits) == (3, [1])


def test_when_the_attempts_run_out_the_storage_error_comes_out() -> None:
    factory, commits = Scripted(losses=3), []
    with pytest.raises(Deadlock, match="attempt 3"):
        _service(factory, commits).run(_handler, 1)
    assert (factory.opened, commits) == (3, [])


def test_other_errors_are_not_retried() -> None:
    factory = Scripted(losses=0)

    def broken(uow: UnitOfWork) -> None:
        raise ValueError("a bug, not a race")

    with pytest.raises(ValueError, match="a bug"):
        _service(factory, []).run(broken)
    assert factory.opened == 1
