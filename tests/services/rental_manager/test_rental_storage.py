"""Storage: the migration matches the models, ids survive a dump and restore, and the SQLite default works
(with writers serialised, so the overlap rule holds there too)."""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from quartet_shared.settings import KernelSettings
from quartet_tools.harness.rental import JWT_SECRET, drop_database
from quartet_tools.infra import postgres_bindir
from rental_manager.adapters.db import rental_engine
from rental_manager.adapters.orm import Base, OutboxMessage
from rental_manager.bootstrap import bootstrap
from rental_manager.domain.entities import House, Lease, User
from rental_manager.domain.errors import DomainError
from rental_manager.domain.model import Role
from rental_manager.service import billing, houses, rentals
from rental_manager.service.commands import ApplyForHouse, PayBill, SignLease
from rental_manager.service.schemas import HouseQuery
from rental_manager.service.unit import SYSTEM
from rental_manager.settings import RentalSettings
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tests.support.rental import create_database, house_data, person, rental_settings
from tests.support.servers import Servers


@pytest.mark.integration
def test_the_migration_creates_exactly_what_the_models_describe(rental_database: str) -> None:
    engine = rental_engine(rental_database)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"version_table": "rental_manager_alembic_version"}),
                Base.metadata,
            )
    finally:
        engine.dispose()
    # The kernel's inbox table is not among the models: the migration creates it for claim_message.
    unexpected = [d for d in diff if not (d[0] == "remove_table" and d[1].name == "processed_messages")]
    assert unexpected == []


@pytest.mark.integration
def test_ids_survive_a_dump_and_restore(servers: Servers, settings: KernelSettings, unique: str) -> None:
    source = f"rental_dump_{unique}"
    target = f"rental_restore_{unique}"
    url = create_database(servers.database_url, source)
    try:
        rental = bootstrap(rental_settings(settings, url, unique))
        landlord = person(rental, Role.LANDLORD)
        before = rental.service.run(houses.create_house, landlord.actor, house_data()).id
        rental.close()
        parsed = make_url(url)
        conn = ["-h", str(parsed.host), "-p", str(parsed.port), "-U", str(parsed.username)]
        # The server asks every TCP login for its password; libpq's tools read it from PGPASSWORD.
        admin = {**os.environ, "PGUSER": str(parsed.username), "PGPASSWORD": parsed.password or ""}
        dump = subprocess.run(
            [str(postgres_bindir() / "pg_dump"), *conn, "--no-owner", source],
            check=True,
            capture_output=True,
            env=admin,
        ).stdout
        subprocess.run([str(postgres_bindir() / "createdb"), *conn, target], check=True, env=admin)
        subprocess.run(
            [str(postgres_bindir() / "psql"), *conn, "-v", "ON_ERROR_STOP=1", "-q", target],
            input=dump,
            check=True,
            capture_output=True,
            env=admin,
        )
        restored = bootstrap(rental_settings(settings, parsed.set(database=target).render_as_string(False), unique))
        try:
            with restored.engine.connect() as c:
                assert c.scalar(select(House.id).where(House.id == before)) == before
            # New rows insert without a sequence to resynchronise: ids are UUIDs made by the application.
            after = restored.service.run(houses.create_house, landlord.actor, house_data()).id
            assert after != before
            with restored.engine.connect() as c:
                assert c.scalar(select(func.count()).select_from(House)) == 2
        finally:
            restored.close()
    finally:
        drop_database(servers.database_url, target)
        drop_database(servers.database_url, source)


def test_the_sqlite_default_runs_the_whole_flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = RentalSettings(
        database_url=None,
        redis_url="redis://127.0.0.1:1/0",  # no Redis: searches go to the database
        kafka_bootstrap_servers="127.0.0.1:1",
        jwt_secret=JWT_SECRET,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        redis_retry_after_s=60,
    )
    rental = bootstrap(cfg)
    try:
        rental.migrate()
        assert (tmp_path / ".local" / "data" / "rental-manager.sqlite3").is_file()
        svc = rental.service
        landlord = person(rental, Role.LANDLORD)
        tenants = [person(rental, Role.TENANT) for _ in range(6)]
        house = svc.run(houses.create_house, landlord.actor, house_data(city="Nantes")).id
        start = svc.today() + timedelta(days=7)
        apps = [
            svc.run(
                rentals.submit_application,
                t.actor,
                ApplyForHouse(house_id=house, start_date=start, end_date=start + timedelta(days=90)),
            ).id
            for t in tenants
        ]
        # Concurrent approvals: BEGIN IMMEDIATE serialises the writers, so exactly one lease is signed.
        outcomes: list[str] = []
        barrier = threading.Barrier(len(apps))

        def approve(application: uuid.UUID) -> None:
            barrier.wait()
            try:
                svc.run(rentals.approve_application, landlord.actor, SignLease(application_id=application))
                outcomes.append("ok")
            except DomainError as exc:
                outcomes.append(type(exc).__name__)

        threads = [threading.Thread(target=approve, args=(a,)) for a in apps]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert Counter(outcomes) == {"ok": 1, "InvalidTransition": len(apps) - 1}
        report = svc.run_billing(SYSTEM, start + timedelta(days=40))
        assert report.bills_issued == 2
        bills = svc.run(billing.list_bills, landlord.actor).items
        svc.run(billing.record_payment, landlord.actor, PayBill(bill_id=bills[0].id, amount_cents=100))
        assert svc.search(HouseQuery(city="nantes")).total == 1
        with rental.engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Lease)) == 1
            assert conn.scalar(select(func.count()).select_from(User)) == 7
            assert conn.scalar(select(func.count()).select_from(OutboxMessage)) > 0
    finally:
        rental.close()
