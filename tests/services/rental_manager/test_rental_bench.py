"""The rental benchmark's pieces on a small scale: its seeded houses are searchable, every search of its mix
is a valid query that finds houses, the cache answers as the database does, and the double-booking check
sees what the approvals did."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from quartet_shared.settings import KernelSettings
from rental_manager.bootstrap import bootstrap
from rental_manager.domain.model import Role
from rental_manager.entrypoints.api import create_api

from tests.support.rental import person, rental_settings

pytestmark = pytest.mark.integration

BENCH = Path(__file__).parents[3] / "bench"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_rental_under_test", BENCH / "bench_rental.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Dataclasses resolve their module through sys.modules while the class body executes.
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_the_search_mix_finds_seeded_houses_alike_with_and_without_the_cache(
    bench: Any, settings: KernelSettings, own_database: str, unique: str
) -> None:
    config = rental_settings(settings, own_database, unique)
    rental = bootstrap(config)
    try:
        landlord = person(rental, Role.LANDLORD)
        bench.seed_houses(config, 600, [landlord.actor.id])
        paths = bench.query_mix(rental.service.today())
        assert len(set(paths)) == len(paths) >= 40
        cached = TestClient(create_api(rental))
        found = 0
        for path in paths:
            first, again = cached.get(path), cached.get(path)
            assert first.status_code == 200, (path, first.text)
            assert again.content == first.content
            found += first.json()["total"] > 0
        assert found >= len(paths) // 2  # the mix is made of searches that hit, not empty pages
        rental.service.search_cache = None
        for path in paths[:10]:
            assert TestClient(create_api(rental)).get(path).json() == cached.get(path).json()
    finally:
        rental.close()


def test_contended_approvals_leave_no_double_booking(
    bench: Any, settings: KernelSettings, own_database: str, unique: str
) -> None:
    config = rental_settings(settings, own_database, unique)
    contention = bench.seed_contention(config, houses=2, per_house=6)
    assert len(contention.applications) == 12
    rental = bootstrap(config)
    try:
        with TestClient(create_api(rental)) as client:
            for application, token in contention.applications:
                bearer = {"Authorization": f"Bearer {token}"}
                answer = client.post(f"/applications/{application}/approve", headers=bearer)
                assert answer.status_code in (200, 409), answer.text
    finally:
        rental.close()
    overlaps, leases, approved, pending = bench.double_bookings(config)
    assert overlaps == 0
    assert leases == approved >= 2
    assert pending == 0
